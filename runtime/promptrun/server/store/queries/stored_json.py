"""JSON columns as read back: whatever a row holds, and a huge stored object only in part.

A row written around the server (or by an older one) can hold anything: what is not JSON
comes back as it is stored, so one odd row never fails a whole read. A request stored before
the server bounded metadata can hold millions of metadata keys, and decoding them all for a
page holds the GIL for seconds, which stalls the server for everyone: :func:`bounded_object`
and :func:`bounded_body` read the first entries of such an object, at a cost that grows with
what is kept rather than with what is stored, and say whether they left some out.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import msgspec

__all__ = ["bounded_body", "bounded_object", "object_head", "stored_json"]

_decode = msgspec.json.decode
_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])  # skips over values, builds none
_VALUE = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
SMALL = 65_536
"""Characters of JSON decoded whole: at most a few thousand entries, a millisecond or two."""


def stored_json(raw: Any) -> Any:
    """A JSON column's value; what is not JSON comes back as it is stored."""
    try:
        return _decode(raw)
    except (msgspec.DecodeError, RecursionError, TypeError):
        return raw


def _skip(text: str, at: int) -> int:
    found = _SPACE.match(text, at)
    assert found is not None  # the pattern matches the empty string
    return found.end()


def object_head(text: str, limit: int) -> tuple[dict[str, Any], bool]:
    """The first ``limit`` entries of the JSON object ``text``, and whether it has more.

    Only those entries are decoded; a ValueError when ``text`` is not a JSON object as far
    as it is read."""
    at = _skip(text, 0)
    if not text.startswith("{", at):
        raise ValueError("not a JSON object")
    at = _skip(text, at + 1)
    head: dict[str, Any] = {}
    if text.startswith("}", at):
        return head, False
    while True:
        if len(head) == limit:
            return head, True
        if not text.startswith('"', at):
            raise ValueError(f"a key expected at {at}")
        key, at = _VALUE.raw_decode(text, at)  # a JSON string, from its opening quote
        at = _skip(text, at)
        if not text.startswith(":", at):
            raise ValueError(f"':' expected at {at}")
        head[key], at = _VALUE.raw_decode(text, _skip(text, at + 1))
        at = _skip(text, at)
        if text.startswith("}", at):
            return head, False
        if not text.startswith(",", at):
            raise ValueError(f"',' expected at {at}")
        at = _skip(text, at + 1)


def bounded_object(raw: Any, limit: int) -> tuple[Any, bool]:
    """A JSON column (as :func:`stored_json`) holding at most ``limit`` entries of an object,
    and whether some were left out."""
    if isinstance(raw, str) and len(raw) > SMALL:
        try:
            return object_head(raw, limit)
        except (ValueError, RecursionError):
            pass  # not a JSON object: read as any column is
    value = stored_json(raw)
    if isinstance(value, dict) and len(value) > limit:
        return dict(itertools.islice(value.items(), limit)), True
    return value, False


def bounded_body(raw: Any, limit: int) -> tuple[Any, bool]:
    """A stored request body (as :func:`stored_json`) whose ``metadata`` holds at most
    ``limit`` entries, and whether some were left out; the rest of it whole."""
    if isinstance(raw, str) and len(raw) > SMALL:
        try:
            parts = _TOP_LEVEL.decode(raw)
            body: dict[str, Any] = {}
            cut = False
            for key, part in parts.items():
                if key == "metadata":
                    body[key], cut = bounded_object(bytes(memoryview(part)).decode(), limit)
                else:
                    body[key] = _decode(part)
            return body, cut
        except (msgspec.DecodeError, RecursionError):
            pass  # not a JSON object: read as any column is
    value = stored_json(raw)
    metadata = value.get("metadata") if isinstance(value, dict) else None
    if isinstance(metadata, dict) and len(metadata) > limit:
        value["metadata"] = dict(itertools.islice(metadata.items(), limit))
        return value, True
    return value, False
