"""OpenAI stream accumulators: Chat Completions chunks, Completions chunks, Responses events."""

from __future__ import annotations

from typing import Any

from promptrun.blueprint._accumulator import StreamAccumulator, _Call
from promptrun.blueprint._util import Json, _get, dump_arguments, plain

__all__ = ["ChatAccumulator", "CompletionAccumulator", "ResponsesAccumulator"]


class ChatAccumulator(StreamAccumulator):
    """``ChatCompletionChunk`` stream (choice 0 only) to a ``chat.completion`` dict.

    Handles content and refusal deltas, tool-call deltas by index (id and name first, then
    argument fragments) and the usage-only last chunk that ``include_usage`` asks for.
    """

    def __init__(self) -> None:
        super().__init__()
        self._head: Any = None
        self._by_index: dict[int, _Call] = {}
        self._finish: Any = None
        self._usage: Any = None

    def add(self, chunk: Any) -> Json:
        if self._head is None:
            self._head = chunk
        choices = _get(chunk, "choices")
        if choices:
            for choice in choices:
                if _get(choice, "index"):
                    continue
                delta = _get(choice, "delta")
                if delta is not None:
                    text = _get(delta, "content")
                    if text:
                        self._text(text)
                    else:
                        refusal = _get(delta, "refusal")
                        if refusal:
                            self._text(refusal)
                    calls = _get(delta, "tool_calls")
                    if calls:
                        self._tool_deltas(calls)
                finish = _get(choice, "finish_reason")
                if finish:
                    self._finish = finish
        used = _get(chunk, "usage")
        if used is not None:
            self._usage = used
        return self.message()

    def _tool_deltas(self, deltas: Any) -> None:
        for delta in deltas:
            index = _get(delta, "index") or 0
            function = _get(delta, "function")
            call = self._by_index.get(index)
            if call is None:
                name = _get(function, "name") if function is not None else None
                call = self._by_index[index] = self._new_call(_get(delta, "id") or "", name or "")
            elif _get(delta, "id"):
                call.id = _get(delta, "id")
            if function is not None:
                fragment = _get(function, "arguments")
                if fragment:
                    # Mistral may send a whole JSON object instead of text fragments.
                    call.arguments += dump_arguments(fragment)
        self._call_changed()

    def final_response(self) -> Json:
        head = self._head
        text = self.text
        msg: Json = {"role": "assistant", "content": text or None, "refusal": None}
        if self._calls:
            msg["tool_calls"] = [c.as_tool_call() for c in self._calls]
        finish = self._finish or ("tool_calls" if self._calls else "stop")
        out: Json = {
            "id": _get(head, "id"),
            "object": "chat.completion",
            "created": _get(head, "created") or 0,
            "model": _get(head, "model"),
            "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        }
        fingerprint = _get(head, "system_fingerprint")
        if fingerprint is not None:
            out["system_fingerprint"] = fingerprint
        if self._usage is not None:
            out["usage"] = plain(self._usage)
        return out

    @property
    def usage(self) -> tuple[int, int]:
        used = self._usage
        if used is None:
            return 0, 0
        return _get(used, "prompt_tokens") or 0, _get(used, "completion_tokens") or 0


class CompletionAccumulator(ChatAccumulator):
    """Legacy ``Completion`` stream (``choices[0].text`` deltas) to a ``text_completion`` dict."""

    def add(self, chunk: Any) -> Json:
        if self._head is None:
            self._head = chunk
        for choice in _get(chunk, "choices") or ():
            if _get(choice, "index"):
                continue
            text = _get(choice, "text")
            if text:
                self._text(text)
            finish = _get(choice, "finish_reason")
            if finish:
                self._finish = finish
        used = _get(chunk, "usage")
        if used is not None:
            self._usage = used
        return self.message()

    def final_response(self) -> Json:
        head = self._head
        choice = {
            "index": 0,
            "text": self.text,
            "finish_reason": self._finish or "stop",
            "logprobs": None,
        }
        out: Json = {
            "id": _get(head, "id"),
            "object": "text_completion",
            "created": _get(head, "created") or 0,
            "model": _get(head, "model"),
            "choices": [choice],
        }
        if self._usage is not None:
            out["usage"] = plain(self._usage)
        return out


_DONE = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesAccumulator(StreamAccumulator):
    """Responses API stream events to a ``response`` dict.

    Text, refusal and reasoning-summary deltas, function calls (``output_item.added`` then
    argument deltas); the final ``response.completed`` event's response is the final response.
    """

    def __init__(self) -> None:
        super().__init__()
        self._response: Any = None
        self._done = False
        self._by_output: dict[Any, _Call] = {}

    def add(self, chunk: Any) -> Json:
        kind = _get(chunk, "type")
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            self._text(_get(chunk, "delta") or "")
        elif kind == "response.function_call_arguments.delta":
            call = self._by_output.get(_get(chunk, "output_index"))
            if call is not None:
                call.arguments += _get(chunk, "delta") or ""
                self._call_changed()
        elif kind == "response.reasoning_summary_text.delta":
            self._text(_get(chunk, "delta") or "", "thinking")
        elif kind == "response.output_item.added" or kind == "response.output_item.done":
            item = _get(chunk, "item")
            if _get(item, "type") == "function_call":
                self._function_call(_get(chunk, "output_index"), item)
        elif kind in _DONE:
            self._response = _get(chunk, "response")
            self._done = True
        elif kind == "response.created" or kind == "response.in_progress":
            self._response = _get(chunk, "response")
        return self.message()

    def _function_call(self, output_index: Any, item: Any) -> None:
        call = self._by_output.get(output_index)
        call_id = _get(item, "call_id") or _get(item, "id") or ""
        if call is None:
            self._by_output[output_index] = self._new_call(
                call_id, _get(item, "name") or "", _get(item, "arguments") or ""
            )
            return
        call.id = call_id or call.id
        call.name = _get(item, "name") or call.name
        call.arguments = _get(item, "arguments") or call.arguments
        self._call_changed()

    def final_response(self) -> Json:
        if self._done and self._response is not None:
            result = plain(self._response)
            return result if isinstance(result, dict) else {}
        output: list[Json] = []
        for block in self._blocks:
            if block.kind == "text":
                part = {"type": "output_text", "text": block.text, "annotations": []}
                output.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "status": "completed",
                        "content": [part],
                    }
                )
            else:
                summary = [{"type": "summary_text", "text": block.text}]
                output.append({"type": "reasoning", "summary": summary})
        for call in self._calls:
            output.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "status": "completed",
                }
            )
        head = self._response
        return {
            "id": _get(head, "id"),
            "object": "response",
            "created_at": _get(head, "created_at") or 0,
            "model": _get(head, "model"),
            "status": "incomplete",
            "output": output,
        }

    @property
    def usage(self) -> tuple[int, int]:
        used = _get(self._response, "usage") if self._response is not None else None
        if used is None:
            return 0, 0
        return _get(used, "input_tokens") or 0, _get(used, "output_tokens") or 0
