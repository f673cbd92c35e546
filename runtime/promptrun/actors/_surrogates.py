"""Text that cannot be sent as JSON: lone UTF-16 surrogates (``"\\ud800"``).

They come from bytes decoded with ``errors="surrogateescape"`` or from JSON sources that
escape half a character. UTF-8 cannot carry them, so a record holding one cannot be encoded.
Only looked at when encoding failed: the record's field that holds one, for the error, and
a copy with each replaced by U+FFFD, for records that must not be lost over one character.
"""

from __future__ import annotations

import re
from typing import Any

from promptrun._errors import PromptLayerValidationError

__all__ = ["replace_surrogates", "surrogate_field", "unsendable"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_field(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) holding a lone surrogate, with the character's
    position: ``input.messages[0].content[0].text (position 5)``; None if there is none."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return None if found is None else f"{path or 'the value'} (position {found.start()})"
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):
                return f"a key in {path or 'the record'} ({key!r})"
            if (where := surrogate_field(item, name)) is not None:
                return where
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if (where := surrogate_field(item, f"{path}[{i}]")) is not None:
                return where
    return None


def unsendable(caller: str, where: str) -> PromptLayerValidationError:
    """The error for a value (``where``, from :func:`surrogate_field`) that cannot be sent."""
    return PromptLayerValidationError(
        f"{caller}: {where} holds a lone surrogate, which cannot be sent as UTF-8 JSON (text "
        "decoded with errors='surrogateescape', or half an escaped character?); fix that "
        "text, e.g. text.encode('utf-8', 'replace').decode('utf-8')"
    )


def replace_surrogates(value: Any) -> Any:
    """A copy of ``value`` with every lone surrogate replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replace_surrogates(k): replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [replace_surrogates(v) for v in value]
    return value
