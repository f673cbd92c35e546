"""Bedrock ConverseStream events (and Mistral's wrapped chunks) to a blueprint message."""

from __future__ import annotations

from typing import Any

from promptrun.blueprint._accumulator import StreamAccumulator, _Block, _Call
from promptrun.blueprint._anthropic import loads_input
from promptrun.blueprint._openai_stream import ChatAccumulator
from promptrun.blueprint._util import Json, _get

__all__ = ["BedrockAccumulator", "MistralAccumulator"]


class BedrockAccumulator(StreamAccumulator):
    """``messageStart``, ``contentBlockStart/Delta/Stop``, ``messageStop``, ``metadata``.

    Each event is a one-key dict as boto3's ``converse_stream`` yields it. Deltas carry
    ``text``, ``toolUse.input`` (JSON fragments) or ``reasoningContent`` (text, signature).
    """

    def __init__(self) -> None:
        super().__init__()
        self._slots: dict[int, _Block | _Call] = {}
        self._order: list[_Block | _Call] = []
        self._role = "assistant"
        self._stop_reason: Any = None
        self._usage: Any = None
        self._metrics: Any = None

    def _slot(self, index: int, kind: str) -> _Block:
        slot = self._slots.get(index)
        if type(slot) is not _Block or slot.kind != kind:
            slot = self._new_block(kind)
            self._slots[index] = slot
            self._order.append(slot)
        return slot

    def add(self, chunk: Any) -> Json:
        delta_event = _get(chunk, "contentBlockDelta")
        if delta_event is not None:
            index = _get(delta_event, "contentBlockIndex") or 0
            delta = _get(delta_event, "delta") or {}
            text = _get(delta, "text")
            if text is not None:
                block = self._slot(index, "text")
                block.text += text
                block.part = None
            elif _get(delta, "toolUse") is not None:
                call = self._slots.get(index)
                if type(call) is _Call:
                    call.arguments += _get(_get(delta, "toolUse"), "input") or ""
                    self._call_changed()
            elif _get(delta, "reasoningContent") is not None:
                reasoning = _get(delta, "reasoningContent")
                block = self._slot(index, "thinking")
                block.text += _get(reasoning, "text") or ""
                if _get(reasoning, "signature"):
                    block.signature = (block.signature or "") + _get(reasoning, "signature")
                block.part = None
            return self.message()
        start = _get(chunk, "contentBlockStart")
        if start is not None:
            use = _get(_get(start, "start"), "toolUse")
            if use is not None:
                call = self._new_call(_get(use, "toolUseId") or "", _get(use, "name") or "")
                self._slots[_get(start, "contentBlockIndex") or 0] = call
                self._order.append(call)
        elif (stop := _get(chunk, "messageStop")) is not None:
            self._stop_reason = _get(stop, "stopReason")
        elif (meta := _get(chunk, "metadata")) is not None:
            self._usage = _get(meta, "usage")
            self._metrics = _get(meta, "metrics")
        elif (begin := _get(chunk, "messageStart")) is not None:
            self._role = _get(begin, "role") or "assistant"
        return self.message()

    def final_response(self) -> Json:
        content: list[Json] = []
        for slot in self._order:
            if isinstance(slot, _Call):
                use = {
                    "toolUseId": slot.id,
                    "name": slot.name,
                    "input": loads_input(slot.arguments),
                }
                content.append({"toolUse": use})
            elif slot.kind == "text":
                content.append({"text": slot.text})
            else:
                reasoning: Json = {"text": slot.text}
                if slot.signature:
                    reasoning["signature"] = slot.signature
                content.append({"reasoningContent": {"reasoningText": reasoning}})
        out: Json = {
            "output": {"message": {"role": self._role, "content": content}},
            "stopReason": self._stop_reason,
            "usage": dict(self._usage) if self._usage else {"inputTokens": 0, "outputTokens": 0},
        }
        if self._metrics:
            out["metrics"] = dict(self._metrics)
        return out

    @property
    def usage(self) -> tuple[int, int]:
        used = self._usage or {}
        total_in = (
            (used.get("inputTokens") or 0)
            + (used.get("cacheReadInputTokens") or 0)
            + (used.get("cacheWriteInputTokens") or 0)
        )
        return total_in, used.get("outputTokens") or 0


class MistralAccumulator(ChatAccumulator):
    """mistralai's stream: each item is a ``CompletionEvent`` whose ``data`` is the chunk.

    Tool-call arguments may arrive as a JSON object rather than text.
    """

    def add(self, chunk: Any) -> Json:
        data = _get(chunk, "data")
        return super().add(chunk if data is None else data)
