"""Argument checks shared by the public methods: fail before any network call, say what to fix.

Every message reads ``"{method}: {argument} must be {what}, got {type} {value}"``.
``log_request`` inlines the same checks with plain ``type()`` tests (see ``_logreq``): it is on
the caller's hot path, where a call per argument would cost more than the rest of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptrun._errors import PromptLayerValidationError
from promptrun.wire._metadata import metadata_problem

__all__ = [
    "check_bool",
    "check_choice",
    "check_dict",
    "check_int",
    "check_metadata",
    "check_positive",
    "check_request_id",
    "check_str",
    "check_str_list",
    "check_str_map",
    "is_http_url",
]


def check_str(where: str, name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise PromptLayerValidationError(
            f"{where}: {name} must be a non-empty string, got {type(value).__name__} {value!r:.80}"
        )


def check_int(
    where: str,
    name: str,
    value: Any,
    *,
    optional: bool = False,
    lo: int | None = None,
    hi: int | None = None,
) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise PromptLayerValidationError(
            f"{where}: {name} must be an integer, got {type(value).__name__} {value!r:.80}"
        )
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise PromptLayerValidationError(f"{where}: {name} must be from {lo} to {hi}, got {value}")


def check_dict(where: str, name: str, value: Any, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Mapping):
        raise PromptLayerValidationError(
            f"{where}: {name} must be a dict, got {type(value).__name__} {value!r:.80}"
        )


def check_str_map(where: str, name: str, value: Any) -> None:
    check_dict(where, name, value, optional=False)
    bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise PromptLayerValidationError(
            f"{where}: {name} must map strings to strings; fix the entries for {bad[:5]!r}"
        )


def check_metadata(where: str, value: Any, *, workflow: bool = False) -> None:
    """A dict or None, within the server's metadata limits (``wire._metadata``): a record
    the server would refuse is refused here, before anything is sent."""
    check_dict(where, "metadata", value)
    if value and (problem := metadata_problem(value, workflow=workflow)) is not None:
        raise PromptLayerValidationError(f"{where}: {problem}")


def check_str_list(where: str, name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PromptLayerValidationError(f"{where}: {name} must be a list of strings")


def check_request_id(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise PromptLayerValidationError(
            f"{where}: request_id must be the id run() or log_request() returned "
            f"(a str or an int), got {type(value).__name__} {value!r:.80}"
        )


def _got(value: Any) -> str:
    return f"got {type(value).__name__} {value!r:.80}"


def check_bool(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise PromptLayerValidationError(f"{where}: {name} must be True or False, {_got(value)}")


def check_choice(where: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise PromptLayerValidationError(f"{where}: {name} must be {options}, {_got(value)}")


def check_positive(where: str, name: str, value: Any, *, optional: bool = False) -> None:
    """Seconds, a count: a number more than 0."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise PromptLayerValidationError(
            f"{where}: {name} must be a number more than 0, {_got(value)}"
        )


def is_http_url(text: str) -> bool:
    """Whether ``text`` starts with an http:// or https:// scheme, in any case (RFC 3986:
    schemes are case-insensitive, ``HTTP://host`` is ``http://host``)."""
    return text[:8].lower().startswith(("http://", "https://"))
