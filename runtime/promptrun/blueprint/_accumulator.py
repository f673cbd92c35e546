"""The base of every stream accumulator: content blocks and tool calls being streamed.

``add(chunk)`` is on the per-chunk hot path, so accumulators read chunk fields directly (dict
or SDK object), keep plain strings, and rebuild only the parts of the message that changed.
"""

from __future__ import annotations

from typing import Any

from promptrun.blueprint._util import Json

__all__ = ["StreamAccumulator"]


class _Block:
    """One content part being streamed: text or thinking."""

    __slots__ = ("kind", "part", "signature", "text")

    def __init__(self, kind: str, text: str = "", signature: Any = None) -> None:
        self.kind = kind
        self.text = text
        self.signature = signature
        self.part: Json | None = None

    def as_part(self) -> Json:
        part = self.part
        if part is None:
            if self.kind == "text":
                part = {"type": "text", "text": self.text}
            else:
                part = {"type": "thinking", "thinking": self.text, "signature": self.signature}
            self.part = part
        return part


class _Call:
    """One tool call being streamed; arguments arrive as JSON fragments."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self, call_id: str, name: str, arguments: str = "") -> None:
        self.id = call_id
        self.name = name
        self.arguments = arguments

    def as_tool_call(self) -> Json:
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


class StreamAccumulator:
    """Collects a provider stream into a blueprint message and a non-streaming response.

    ``add(chunk)`` takes each chunk as it arrives (SDK object or dict) and returns the
    assistant message so far: all text so far, and the tool calls so far with their arguments
    joined. ``final_response()`` is the provider's non-streaming result as a dict, built from
    the chunks; ``usage`` is ``(input_tokens, output_tokens)``. Parts of the message that did
    not change since the last ``add`` are the same objects as before: treat them as read-only.
    """

    def __init__(self) -> None:
        self._blocks: list[_Block] = []
        self._calls: list[_Call] = []
        self._calls_view: list[Json] | None = None

    # -- building helpers for subclasses

    def _text(self, delta: str, kind: str = "text") -> None:
        blocks = self._blocks
        if blocks and blocks[-1].kind == kind:
            block = blocks[-1]
            block.text += delta
            block.part = None
        else:
            blocks.append(_Block(kind, delta))

    def _new_block(self, kind: str, text: str = "", signature: Any = None) -> _Block:
        block = _Block(kind, text, signature)
        self._blocks.append(block)
        return block

    def _new_call(self, call_id: str, name: str, arguments: str = "") -> _Call:
        call = _Call(call_id, name, arguments)
        self._calls.append(call)
        self._calls_view = None
        return call

    def _call_changed(self) -> None:
        self._calls_view = None

    # -- public

    def add(self, chunk: Any) -> Json:
        """Take one chunk; return the assistant message so far."""
        raise NotImplementedError

    def message(self) -> Json:
        """The assistant blueprint message so far."""
        msg: Json = {
            "role": "assistant",
            "content": [b.as_part() for b in self._blocks],
            "input_variables": [],
            "template_format": "f-string",
        }
        if self._calls:
            view = self._calls_view
            if view is None:
                view = self._calls_view = [c.as_tool_call() for c in self._calls]
            msg["tool_calls"] = view
        return msg

    def final_response(self) -> Json:
        """The provider's non-streaming response, as a dict, assembled from the chunks."""
        raise NotImplementedError

    @property
    def usage(self) -> tuple[int, int]:
        """``(input_tokens, output_tokens)`` as reported by the stream so far."""
        raise NotImplementedError

    @property
    def text(self) -> str:
        """All the text (not thinking) streamed so far."""
        return "".join(b.text for b in self._blocks if b.kind == "text")
