"""Google GenerateContentResponse chunks to a blueprint message and a response dict."""

from __future__ import annotations

import json
from typing import Any

from promptrun.blueprint._accumulator import StreamAccumulator, _Block
from promptrun.blueprint._google import signature_text
from promptrun.blueprint._util import Json, _get, _gget, dump_arguments, enum_value, plain

__all__ = ["GoogleAccumulator"]


class GoogleAccumulator(StreamAccumulator):
    """Chunks of ``generate_content_stream`` (candidate 0): text, thoughts, function calls.

    ``usage_metadata`` is cumulative in Google's stream, so the last one seen wins.
    """

    def __init__(self) -> None:
        super().__init__()
        self._order: list[Any] = []
        self._finish: Any = None
        self._meta: Any = None
        self._model_version: Any = None
        self._response_id: Any = None
        self._generated_ids: set[str] = set()  # ids we made up, never sent back to Google

    def add(self, chunk: Any) -> Json:
        candidates = _get(chunk, "candidates")
        if candidates:
            candidate = candidates[0]
            content = _get(candidate, "content")
            if content is not None:
                for part in _get(content, "parts") or ():
                    self._part(part)
            finish = _gget(candidate, "finish_reason", "finishReason")
            if finish is not None:
                self._finish = finish
        meta = _gget(chunk, "usage_metadata", "usageMetadata")
        if meta is not None:
            self._meta = meta
        if self._model_version is None:
            self._model_version = _gget(chunk, "model_version", "modelVersion")
            self._response_id = _gget(chunk, "response_id", "responseId")
        return self.message()

    def _part(self, part: Any) -> None:
        text = _get(part, "text")
        if text is not None:
            thought = bool(_get(part, "thought"))
            kind = "thinking" if thought else "text"
            blocks = self._blocks
            if blocks and blocks[-1].kind == kind and blocks[-1] is self._order[-1]:
                block = blocks[-1]
                block.text += text
                block.part = None
            else:
                block = self._new_block(kind, text)
                self._order.append(block)
            if thought:
                signature = _gget(part, "thought_signature", "thoughtSignature")
                if signature is not None:
                    block.signature = signature_text(signature)
                    block.part = None
            return
        call = _gget(part, "function_call", "functionCall")
        if call is not None:
            call_id = _get(call, "id")
            if not call_id:
                call_id = f"call_{len(self._calls)}"
                self._generated_ids.add(call_id)
            args = _get(call, "args")
            self._order.append(
                self._new_call(call_id, _get(call, "name") or "", dump_arguments(args))
            )
            return
        self._order.append(plain(part))

    def final_response(self) -> Json:
        parts: list[Json] = []
        for item in self._order:
            if type(item) is _Block:
                part: Json = {"text": item.text}
                if item.kind == "thinking":
                    part["thought"] = True
                    if item.signature is not None:
                        part["thought_signature"] = item.signature
                parts.append(part)
            elif isinstance(item, dict):
                parts.append(item)
            else:
                args = json.loads(item.arguments) if item.arguments else {}
                call: Json = {"name": item.name, "args": args}
                if item.id not in self._generated_ids:
                    call["id"] = item.id
                parts.append({"function_call": call})
        candidate: Json = {"content": {"role": "model", "parts": parts}, "index": 0}
        if self._finish is not None:
            candidate["finish_reason"] = enum_value(self._finish)
        out: Json = {"candidates": [candidate]}
        if self._meta is not None:
            out["usage_metadata"] = plain(self._meta)
        if self._model_version is not None:
            out["model_version"] = self._model_version
        if self._response_id is not None:
            out["response_id"] = self._response_id
        return out

    @property
    def usage(self) -> tuple[int, int]:
        meta = self._meta
        if meta is None:
            return 0, 0
        prompt = _gget(meta, "prompt_token_count", "promptTokenCount") or 0
        output = (_gget(meta, "candidates_token_count", "candidatesTokenCount") or 0) + (
            _gget(meta, "thoughts_token_count", "thoughtsTokenCount") or 0
        )
        return prompt, output
