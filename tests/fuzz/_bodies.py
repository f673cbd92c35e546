"""Hypothesis strategies for hostile request bodies, derived from a valid one.

A body is mutated (a field set to a wrong type, a huge or odd string, a huge number, deep
nesting; a field removed; a field added) or replaced outright (random bytes, truncated JSON,
a JSON value that is not an object, NaN and Infinity literals, invalid UTF-8, duplicate keys).
Deep nesting and non-standard literals are spliced into the encoded text, since Python's
json cannot write them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

__all__ = ["bodies", "json_values", "odd_strings", "path_texts", "query_values"]

Path = tuple[str | int, ...]

_RAW_LITERALS = [
    "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 5000, "0x10",
    "01", "+1", "1.", ".5", "1e", "-", "true1", "nul", "1_000", "\u0661",
]  # fmt: skip
_ODD = [
    "", " ", "\x00", "\u202e", "\ufeff", "😀" * 300, "' OR 1=1 --", '"; DROP TABLE requests; --',
    "%s%s%n", "{name}", "{{7*7}}", "{% for x in y %}", "../../etc/passwd", "\\", "\ud800",
    "NaN", "null", "1e400",
]  # fmt: skip

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
huge_ints = st.integers(min_value=19, max_value=400).flatmap(
    lambda k: st.sampled_from([10**k, -(10**k), 2**63, 2**64, -(2**63) - 1, 2**63 - 1])
)
odd_strings = st.one_of(
    st.integers(min_value=513, max_value=300_000).map(lambda n: "x" * n),
    st.integers(min_value=1, max_value=70_000).map(lambda n: "é" * n),
    st.text(st.characters(), min_size=1, max_size=40),
    st.sampled_from(_ODD),
)


class _Splice:
    """Placeholders in the encoded text, replaced by raw text after encoding."""

    def __init__(self) -> None:
        self.raw: dict[str, str] = {}

    def mark(self, text: str) -> str:
        key = f"__splice_{len(self.raw)}__"
        self.raw[key] = text
        return key

    def apply(self, encoded: str) -> str:
        for key, text in self.raw.items():
            encoded = encoded.replace(f'"{key}"', text)
        return encoded


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _paths(value: Any, here: Path = ()) -> list[Path]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*here, index))
    return found


def _parent(body: Any, path: Path) -> Any:
    for step in path[:-1]:
        body = body[step]
    return body


@st.composite
def _replacement(draw: st.DrawFn, splice: _Splice) -> Any:
    kind = draw(st.sampled_from(["value", "huge int", "string", "deep", "literal"]))
    if kind == "value":
        return draw(json_values)
    if kind == "huge int":
        return draw(huge_ints)
    if kind == "string":
        return draw(odd_strings)
    if kind == "deep":
        depth = draw(st.integers(min_value=10, max_value=5000))
        return splice.mark(_nested(depth, draw(st.sampled_from(["list", "dict"]))))
    return splice.mark(draw(st.sampled_from(_RAW_LITERALS)))


@st.composite
def _mutated(draw: st.DrawFn, base: Any) -> bytes:
    body = copy.deepcopy(base)
    splice = _Splice()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(body)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["set", "delete", "add"]))
        if op == "add" or not path:
            target = body
            for step in path:
                target = target[step]
            if isinstance(target, dict):
                key = draw(st.text(max_size=12) | st.sampled_from(["api_key", "id", "__proto__"]))
                target[key] = draw(_replacement(splice))
            continue
        parent = _parent(body, path)
        if op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_replacement(splice))
    text = splice.apply(json.dumps(body, ensure_ascii=draw(st.booleans())))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def _replaced(draw: st.DrawFn, base: Any) -> bytes:
    encoded = json.dumps(base).encode()
    kind = draw(
        st.sampled_from(["bytes", "truncated", "not an object", "empty", "bad utf-8", "dupes"])
    )
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "truncated":
        return encoded[: draw(st.integers(min_value=0, max_value=max(0, len(encoded) - 1)))]
    if kind == "not an object":
        return json.dumps(draw(json_values)).encode()
    if kind == "empty":
        return draw(st.sampled_from([b"", b" ", b"\n", b"null", b"{}", b"[]"]))
    if kind == "bad utf-8":
        return encoded.replace(b'"', b'"\xff\xfe', 1) if b'"' in encoded else b"\xff"
    if isinstance(base, dict) and base:
        key = draw(st.sampled_from(sorted(base)))
        dupe = json.dumps({key: draw(json_values)})[1:-1].encode()
        return b"{" + dupe + b", " + encoded[1:]
    return encoded


def bodies(base: Any) -> st.SearchStrategy[bytes]:
    """Hostile variations of the valid JSON body ``base``, as the bytes to send."""
    return st.one_of(_mutated(base), _mutated(base), _replaced(base))


path_texts = st.one_of(
    # Any character a URL can carry (percent-encoded as UTF-8): lone surrogates cannot be.
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    st.integers(min_value=513, max_value=5000).map(lambda n: "n" * n),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["..", ".", "%", "%zz", "%00", "²", "١٢", "1e5", "0x1", " 1", "1 "]),
)
query_values = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    # aiohttp's HTTP parser refuses a request line over 8190 bytes itself, in plain text,
    # before the app sees it (tests/fuzz checks that apart): stay under it here.
    st.sampled_from(["", "NaN", "inf", "1e3", "0", "-1", "1" * 1500, "%", "%zz"]),
)
