"""What a request's metadata may hold, checked alike by the client (at the call) and the server.

Metadata is the short labels requests are filtered by (user, session, feature, environment):
the server indexes each string value, and the dashboard shows every key. So it is bounded:
at most :data:`MAX_METADATA_KEYS` keys, keys of up to :data:`MAX_METADATA_KEY` characters and
values of up to :data:`MAX_METADATA_VALUE` (a value that is not a string: about its JSON
text), and a string value with its key at most :data:`MAX_METADATA_BYTES` bytes of UTF-8, which
keeps it inside one entry of the database's index (PostgreSQL's hold about 2,700 bytes).
Long or bulky data belongs in the request's input, output or input variables.

Plain Python, no msgspec: the client's argument checks load it with ``import promptrun``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_KEY",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_VALUE",
    "WORKFLOW_METADATA_KEYS",
    "metadata_problem",
]

MAX_METADATA_KEYS = 1_000
"""Keys in one request's metadata (``log_request``, ``run``, ``track.metadata`` each)."""
MAX_METADATA_KEY = 512
"""Characters in a metadata key (as in any name the API takes)."""
MAX_METADATA_VALUE = 1_000
"""Characters in a metadata value: a label, short enough for every database's index."""
MAX_METADATA_BYTES = 2_000
"""Bytes of UTF-8 in a string value and its key together: ASCII text of the longest key and
value fits; text of 3- and 4-byte characters (CJK, emoji) fits fewer characters."""
WORKFLOW_METADATA_KEYS = 4
"""Keys a workflow adds to each request it logs (``workflow_version_execution_id``,
``workflow_name``, ``workflow_version_number``, ``workflow_node_name``), so a workflow run
takes that many fewer."""

_BULK = (
    "keep metadata to the short labels you filter requests by (user, session, feature), and "
    "log long or bulky data in the request's input, output or prompt_input_variables"
)


def _json_size(value: Any, budget: int) -> int:
    """About the characters of ``value`` as JSON, counted only until they pass ``budget``."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, Mapping):
        total = 1
        for key, item in value.items():
            total += len(str(key)) + 4 + _json_size(item, budget - total)  # "key":item,
            if total > budget:
                break
        return total
    if isinstance(value, list | tuple):
        total = 1
        for item in value:
            total += 1 + _json_size(item, budget - total)
            if total > budget:
                break
        return total
    try:
        return len(str(value))  # numbers, true, false, null
    except ValueError:  # an int with more digits than Python will print
        return budget + 1


def metadata_problem(metadata: Mapping[Any, Any], *, workflow: bool = False) -> str | None:
    """What is wrong with ``metadata`` (a mapping) for the limits above, or None.

    ``workflow``: the metadata of a workflow run, which leaves room for the keys a workflow
    adds to each request it logs."""
    most = MAX_METADATA_KEYS - (WORKFLOW_METADATA_KEYS if workflow else 0)
    if len(metadata) > most:
        takes = (
            f"a workflow run takes (each request it logs adds {WORKFLOW_METADATA_KEYS} keys of "
            "its own)"
            if workflow
            else "a request takes"
        )
        return f"metadata has {len(metadata):,} keys, more than the {most:,} {takes}; {_BULK}"
    for key, value in metadata.items():
        name = key if isinstance(key, str) else str(key)
        if len(name) > MAX_METADATA_KEY:
            return (
                f"metadata key {name[:40]!r}... is {len(name):,} characters, more than "
                f"{MAX_METADATA_KEY:,}; use a shorter key"
            )
        if isinstance(value, str):
            if len(value) > MAX_METADATA_VALUE:
                return (
                    f"metadata value of {name!r:.60} is {len(value):,} characters, more than "
                    f"{MAX_METADATA_VALUE:,}; {_BULK}"
                )
            if (len(name) + len(value)) * 4 > MAX_METADATA_BYTES:  # else it cannot be over
                size = len(name.encode("utf-8", "surrogatepass")) + len(
                    value.encode("utf-8", "surrogatepass")
                )
                if size > MAX_METADATA_BYTES:
                    return (
                        f"metadata value of {name!r:.60} is {size:,} bytes of UTF-8 with its "
                        f"key, more than {MAX_METADATA_BYTES:,} (characters outside ASCII take "
                        f"2 to 4 bytes each); {_BULK}"
                    )
        elif _json_size(value, MAX_METADATA_VALUE) > MAX_METADATA_VALUE:
            return (
                f"metadata value of {name!r:.60} is more than {MAX_METADATA_VALUE:,} "
                f"characters as JSON; {_BULK}"
            )
    return None
