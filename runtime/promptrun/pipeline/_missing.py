"""Missing input variables: rendered empty, as the PromptLayer SDK renders them, never silently.

A run whose variables leave some of its template's names unset still runs (the spec's own
examples call ``run()`` without ``input_variables``); each template version says so once per
process, with one WARNING naming the missing variables, so a typo in a variable name shows
in the log without flooding it. ``strict_variables=True`` on the client raises
:class:`~promptrun.blueprint.MissingVariablesError` instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["warn_missing"]

# Enough for every template version a process meets; past it a version may warn again.
_MAX_REMEMBERED = 10_000
_warned: set[tuple[str, str]] = set()
_lock = threading.Lock()


def warn_missing(
    logger: logging.Logger, name: str, version: Any, names: Sequence[str], *, where: str = ""
) -> None:
    """Log one WARNING per template version per process that ``names`` rendered empty."""
    if not names:
        return
    key = (name, str(version))
    with _lock:
        if key in _warned:
            return
        if len(_warned) >= _MAX_REMEMBERED:
            _warned.clear()
        _warned.add(key)
    missing = ", ".join(repr(n) for n in dict.fromkeys(names))
    logger.warning(
        "prompt template %r (version %s) uses input variables that were not given: %s; "
        "they render as empty text%s (pass them in input_variables; strict_variables=True "
        "on the client raises instead). Said once per template version.",
        name,
        version,
        missing,
        where,
    )
