"""The metadata filter's rows: each string metadata value with its request's summary.

``request_metadata`` holds one row per request and string metadata key (logged with the
request, or set by ``track.metadata``, which wins). Each row also carries a copy of its
request's summary (:data:`COPIED`: workspace, time, provider, model, status, prompt, tokens,
price, score), and its index runs ``(workspace_id, key, value, start_time, request_id)`` over
all of it. So the requests a metadata filter matches lie in one range of that index, in time
order, with everything a page's keys, its count and its totals read: ``Filter.meta_rows``
reads them there instead of visiting each request's row in a table of millions (one
scattered read per match, which at 10,000 matches cost more than the rest of the page).

The copies are written with the row (``Dialect.copy_metadata_sql``, :func:`set_values`) and
kept up to date where a request changes after it is stored (:func:`refresh`: ``track.score``
and ``track.prompt``, the only changes a stored request gets).
"""

from __future__ import annotations

from collections.abc import Sequence

from promptrun.server.store.queries._sql import Op, execute, executemany

__all__ = ["COLUMNS", "COPIED", "copies", "refresh", "set_values"]

# The request's columns each metadata row copies: what a page of the log, its count, its
# totals and its sort keys read (queries/rollups.raw_rows, log_search.SORT_KEYS and its cost).
COPIED = (
    "workspace_id", "start_time", "end_time", "provider", "model", "status", "prompt_name",
    "prompt_version", "input_tokens", "output_tokens", "price", "score",
)  # fmt: skip
_CHANGING = ("prompt_name", "prompt_version", "score")  # what track.prompt/score change
COLUMNS = "request_id, key, value, " + ", ".join(COPIED)  # an INSERT's column list


def copies(row: str) -> str:
    """SQL selecting the copied columns of request ``row``, in :data:`COPIED`'s order."""
    return ", ".join(f"{row}.{column}" for column in COPIED)


def set_values(request_id: int, items: Sequence[tuple[str, str]]) -> Op[None]:
    """``track.metadata``: set these keys of a stored request (a value set before is
    replaced)."""
    # The request's row lock first (PostgreSQL; SQLite has one writer): a track.score or
    # track.prompt of this request committing meanwhile cannot leave a stale copy here.
    yield from execute("UPDATE requests SET score = score WHERE id = $1", request_id)
    yield from executemany(
        f"INSERT INTO request_metadata ({COLUMNS}) SELECT r.id, $2, $3, {copies('r')} "
        "FROM requests r WHERE r.id = $1 "
        "ON CONFLICT (request_id, key) DO UPDATE SET value = excluded.value",
        [(request_id, key, value) for key, value in items],
    )


def refresh(request_id: int) -> Op[None]:
    """After a stored request changed: its metadata rows copy what it holds now."""
    changing = ", ".join(_CHANGING)
    yield from execute(
        f"UPDATE request_metadata SET ({changing}) = (SELECT {changing} FROM requests r "
        "WHERE r.id = $1) WHERE request_id = $1",
        request_id,
    )
