"""What a sandbox model answers: deterministic text or a tool call, and its token usage.

Pure functions shared by every provider's routes. The same input always gives the same
reply and the same usage, so tests and benchmarks can assert on them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

__all__ = [
    "Reply",
    "ToolSpec",
    "count_tokens",
    "plan_reply",
    "sample_arguments",
    "sandbox_reply",
    "split_pieces",
    "word_count",
]

_SNIPPET_CHARS = 60
_VOCABULARY = (
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor",
    "indigo", "juniper", "kestrel", "lagoon", "meadow", "nectar", "onyx", "prairie",
    "quartz", "river", "saffron", "tundra", "umber", "velvet", "willow", "xenon",
    "yarrow", "zephyr", "alpine", "breeze", "canyon", "dune", "estuary", "falcon",
)  # fmt: skip
_TOOL_WORD = re.compile(r"\btool\b", re.IGNORECASE)
_WORDS_WITH_SPACE = re.compile(r"\S+\s*")
_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=8192)
def sandbox_reply(prompt_text: str) -> str:
    """Return the sandbox model's answer to `prompt_text` (the last user text).

    The answer is ``"Sandbox reply to: <snippet> (<four words>)"``: the snippet is the first
    60 characters of the text with runs of whitespace folded to one space, and the four words
    are picked from a fixed vocabulary by a BLAKE2 hash of the whole text, so prompts that
    share a beginning still get different answers. For example, ``sandbox_reply("Hi")``
    always returns the same string, and ``sandbox_reply("")`` is ``"Sandbox reply to: (...)"``
    with four words in the brackets.
    """
    snippet = " ".join(prompt_text.split())[:_SNIPPET_CHARS].rstrip()
    digest = hashlib.blake2b(prompt_text.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    words = " ".join(_VOCABULARY[b % len(_VOCABULARY)] for b in digest)
    return f"Sandbox reply to: {snippet} ({words})" if snippet else f"Sandbox reply to: ({words})"


def word_count(texts: Iterable[str]) -> int:
    """Count whitespace-separated words over several texts."""
    return sum(len(text.split()) for text in texts)


def count_tokens(words: int) -> int:
    """Estimate tokens as English text tends to tokenize: 4 per 3 words, rounded, at least 1."""
    return max(1, round(words * 4 / 3))


@lru_cache(maxsize=4096)
def split_pieces(text: str, pieces: int) -> tuple[str, ...]:
    """Split `text` into about `pieces` consecutive parts that join back to `text`."""
    if pieces <= 1 or len(text) <= 1:
        return (text,)
    units = _WORDS_WITH_SPACE.findall(text)
    leading = text[: len(text) - len(text.lstrip())]
    if leading:
        units.insert(0, leading)
    if len(units) < pieces:
        # Too few words: fall back to characters so short replies still stream in parts.
        units = list(text)
    count = min(pieces, len(units))
    size, extra = divmod(len(units), count)
    out: list[str] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(units[start:end]))
        start = end
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The first function tool a request offers: its name and JSON schema for arguments."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """One sandbox answer: text, or a call to `tool_name` with `arguments`, plus usage."""

    text: str
    tool_name: str | None
    arguments: dict[str, Any]
    arguments_json: str
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_SAMPLES: dict[str, Any] = {
    "string": "sample",
    "integer": 1,
    "number": 1,
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}


def sample_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Build arguments for a tool call: one sample value per required key of `schema`."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        properties = {}
    required = schema.get("required")
    if not isinstance(required, list):
        return {}
    args: dict[str, Any] = {}
    for key in required:
        if isinstance(key, str):
            prop = properties.get(key)
            args[key] = _sample_value(prop if isinstance(prop, Mapping) else {})
    return args


def _sample_value(prop: Mapping[str, Any]) -> Any:
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    # Gemini schemas spell types in capitals ("STRING").
    sample = _SAMPLES.get(str(kind).lower(), "sample")
    return sample.copy() if isinstance(sample, list | dict) else sample


def plan_reply(
    last_user_text: str,
    input_words: int,
    tool: ToolSpec | None,
    *,
    answering_tool_result: bool = False,
) -> Reply:
    """Decide the answer to a request.

    A request that offers a tool and whose last user text contains the word "tool" gets a
    call to that tool; an answer to a tool result is always text, so agent loops end.
    """
    input_tokens = count_tokens(input_words)
    if tool is not None and not answering_tool_result and _TOOL_WORD.search(last_user_text):
        arguments = sample_arguments(tool.schema)
        arguments_json = _encode(arguments).decode()
        output_words = 1 + len(arguments_json.split())
        return Reply(
            "", tool.name, arguments, arguments_json, input_tokens, count_tokens(output_words)
        )
    text = sandbox_reply(last_user_text)
    return Reply(text, None, {}, "", input_tokens, _text_tokens(text))


@lru_cache(maxsize=8192)
def _text_tokens(text: str) -> int:
    return count_tokens(len(text.split()))
