"""Anthropic Messages stream events to a blueprint message and a ``Message`` dict."""

from __future__ import annotations

from typing import Any

from promptrun.blueprint._accumulator import StreamAccumulator, _Block, _Call
from promptrun.blueprint._anthropic import loads_input
from promptrun.blueprint._util import Json, _get, dump_arguments, plain

__all__ = ["AnthropicAccumulator"]


class AnthropicAccumulator(StreamAccumulator):
    """``message_start``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``.

    Deltas: ``text_delta``, ``input_json_delta`` (tool input fragments), ``thinking_delta`` and
    ``signature_delta``. ``message_delta`` carries the stop reason and the output token count.
    """

    def __init__(self) -> None:
        super().__init__()
        self._start: Any = None
        self._slots: dict[int, _Block | _Call | Json] = {}
        self._order: list[_Block | _Call | Json] = []
        self._stop_reason: Any = None
        self._stop_sequence: Any = None
        self._input_tokens = 0
        self._output_tokens = 0
        self._usage: Json = {}

    def add(self, chunk: Any) -> Json:
        kind = _get(chunk, "type")
        if kind == "content_block_delta":
            delta = _get(chunk, "delta")
            slot = self._slots.get(_get(chunk, "index"))
            delta_kind = _get(delta, "type")
            if type(slot) is _Block:
                if delta_kind == "text_delta" or delta_kind == "thinking_delta":
                    slot.text += _get(delta, "text" if delta_kind == "text_delta" else "thinking")
                    slot.part = None
                elif delta_kind == "signature_delta":
                    slot.signature = (slot.signature or "") + _get(delta, "signature")
                    slot.part = None
            elif type(slot) is _Call and delta_kind == "input_json_delta":
                slot.arguments += _get(delta, "partial_json") or ""
                self._call_changed()
        elif kind == "content_block_start":
            self._block_start(_get(chunk, "index"), _get(chunk, "content_block"))
        elif kind == "message_delta":
            delta = _get(chunk, "delta")
            self._stop_reason = _get(delta, "stop_reason") or self._stop_reason
            self._stop_sequence = _get(delta, "stop_sequence") or self._stop_sequence
            self._count(_get(chunk, "usage"))
        elif kind == "message_start":
            self._start = _get(chunk, "message")
            self._count(_get(self._start, "usage"))
        return self.message()

    def _count(self, used: Any) -> None:
        if used is None:
            return
        # Counts in message_delta are cumulative: replace, never add.
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            value = _get(used, key)
            if value is not None:
                self._usage[key] = value

    def _block_start(self, index: Any, block: Any) -> None:
        kind = _get(block, "type")
        slot: _Block | _Call | Json
        if kind == "text":
            slot = self._new_block("text", _get(block, "text") or "")
        elif kind == "thinking":
            slot = self._new_block(
                "thinking", _get(block, "thinking") or "", _get(block, "signature")
            )
        elif kind == "tool_use":
            initial = _get(block, "input")
            arguments = "" if not initial else dump_arguments(plain(initial))
            slot = self._new_call(_get(block, "id") or "", _get(block, "name") or "", arguments)
        else:  # redacted_thinking, server tool blocks: kept whole for the final Message
            slot = plain(block) if not isinstance(block, dict) else dict(block)
        self._slots[index] = slot
        self._order.append(slot)

    def final_response(self) -> Json:
        content: list[Json] = []
        for slot in self._order:
            if isinstance(slot, _Block):
                if slot.kind == "text":
                    content.append({"type": "text", "text": slot.text})
                else:
                    content.append(
                        {"type": "thinking", "thinking": slot.text, "signature": slot.signature}
                    )
            elif isinstance(slot, _Call):
                content.append(
                    {
                        "type": "tool_use",
                        "id": slot.id,
                        "name": slot.name,
                        "input": loads_input(slot.arguments),
                    }
                )
            else:
                content.append(slot)
        start = self._start
        return {
            "id": _get(start, "id"),
            "type": "message",
            "role": "assistant",
            "model": _get(start, "model"),
            "content": content,
            "stop_reason": self._stop_reason,
            "stop_sequence": self._stop_sequence,
            "usage": {"input_tokens": 0, "output_tokens": 0, **self._usage},
        }

    @property
    def usage(self) -> tuple[int, int]:
        used = self._usage
        total_in = (
            used.get("input_tokens", 0)
            + used.get("cache_creation_input_tokens", 0)
            + used.get("cache_read_input_tokens", 0)
        )
        return total_in, used.get("output_tokens", 0)
