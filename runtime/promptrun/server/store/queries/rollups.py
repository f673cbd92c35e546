"""Rollups: the request log summed per time bucket, kept up to date as requests are stored.

Three tables, each keyed by workspace, bucket (its start, epoch seconds) and a few columns;
a row holds what the dashboard adds up (requests, tokens, logged prices and the tokens of
requests logged without one, latency sum and maximum, scores) and a latency histogram:

- ``request_hourly``: hour, provider, model, status: the overview, and every filter made only
  of provider, model, status and a time range;
- ``request_prompt_daily``: day, prompt name and version, provider, model, status: per-prompt
  and per-version metrics, and filters by prompt;
- ``request_tag_hourly``: hour, tag, provider, model, status: filters by tag.

:func:`derive` adds the requests it selects to every rollup (or, ``sign=-1``, takes them
away: ``track.prompt`` and ``track.score`` move a request between rows) with one ``INSERT
... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` per table, in the transaction that stores
them, and keeps what filters read beside the log: the filter menus' values
(``request_facets``), string metadata values (``request_metadata``, beside those
``track.metadata`` writes) and, where the dialect keeps them, tag rows.

Latency percentiles come from the histogram: 48 buckets whose edges grow by 2^(1/3) (26%)
from 10 ms to 413 s, so a percentile read from it is within about 13% of the exact value
(and never above the largest latency seen). The same sums over raw rows (:func:`raw_rows`,
``measure_sql(raw=True)``) give the same shape: the parts of a time range that do not fill a
whole bucket, and filters no rollup answers, read the log itself that way.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptrun.server.store.queries._sql import Op, Row, execute, fetch
from promptrun.server.store.queries.dialect import Dialect

__all__ = [
    "BINS",
    "EDGES",
    "HOURLY",
    "MEASURES",
    "PROMPTS",
    "ROLLUPS",
    "TAGS",
    "Rollup",
    "Sums",
    "backfill",
    "bin_of",
    "derive",
    "fold",
    "latency_bin_sql",
    "measure_sql",
    "percentile",
    "raw_rows",
]

# Histogram edges in seconds: bucket 0 is under 10 ms, bucket k is [EDGES[k-1], EDGES[k]),
# the last is 413 s and over.
EDGES: tuple[float, ...] = tuple(0.01 * 2 ** (k / 3) for k in range(47))
BINS = len(EDGES) + 1
HIST = tuple(f"h{k}" for k in range(BINS))
# Start times outside this range (rows written around the server's checks) have no bucket.
_SANE = "r.start_time >= 0 AND r.start_time < 100000000000"


def bin_of(latency: float) -> int:
    """The histogram bucket of ``latency`` seconds."""
    return bisect.bisect_right(EDGES, latency)


def latency_bin_sql(latency: str) -> str:
    """SQL for the histogram bucket of the expression ``latency`` (the edges of bin_of)."""
    arms = " ".join(f"WHEN {latency} < {edge!r} THEN {k}" for k, edge in enumerate(EDGES))
    return f"CASE {arms} ELSE {BINS - 1} END"


@dataclass(frozen=True, slots=True)
class Rollup:
    """A rollup table: its bucket size in seconds and its key columns after the workspace and
    the bucket (each also a column of :func:`raw_rows`)."""

    table: str
    grain: int
    keys: tuple[str, ...]
    tags: bool = False  # one row per tag of each request


HOURLY = Rollup("request_hourly", 3600, ("provider", "model", "status"))
PROMPTS = Rollup(
    "request_prompt_daily",
    86400,
    ("prompt_name", "prompt_version", "provider", "model", "status"),
)
TAGS = Rollup("request_tag_hourly", 3600, ("tag", "provider", "model", "status"), tags=True)
ROLLUPS = (HOURLY, PROMPTS, TAGS)

# (column, its value for one raw row, how rows merge). Raw rows and rollup rows sum alike.
_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("requests", "1", "count"),
    ("input_tokens", "input_tokens", "sum"),
    ("output_tokens", "output_tokens", "sum"),
    ("logged_price", "CASE WHEN price > 0 THEN price ELSE 0 END", "sum"),
    ("unpriced_input", "CASE WHEN price > 0 THEN 0 ELSE input_tokens END", "sum"),
    ("unpriced_output", "CASE WHEN price > 0 THEN 0 ELSE output_tokens END", "sum"),
    ("latency_sum", "lat", "sum"),
    ("latency_max", "lat", "max"),
    ("score_sum", "COALESCE(score, 0)", "sum"),
    ("scored", "CASE WHEN score IS NULL THEN 0 ELSE 1 END", "count"),
    *((name, f"CASE WHEN bin = {k} THEN 1 ELSE 0 END", "count") for k, name in enumerate(HIST)),
)
MEASURES = tuple(name for name, _, _ in _MEASURES)
_FIRST_BIN = MEASURES.index(HIST[0])


def raw_rows(d: Dialect, where: str, *, grain: int | None = None, tags: bool = False) -> str:
    """A subquery: the requests ``where`` selects (SQL over ``requests r``), with the columns
    rollups are keyed and summed by, their latency ``lat``, histogram ``bin`` and, given a
    ``grain``, their ``bucket`` (rows without a sane start time are left out then)."""
    latency = "CASE WHEN r.end_time > r.start_time THEN r.end_time - r.start_time ELSE 0 END"
    columns = [
        "r.workspace_id", "r.start_time", "r.provider", "r.model", "r.status",
        "COALESCE(r.prompt_name, '') AS prompt_name",
        "COALESCE(r.prompt_version, 0) AS prompt_version",
        "r.input_tokens", "r.output_tokens", "r.price", "r.score", f"{latency} AS lat",
    ]  # fmt: skip
    source = "requests r"
    if tags:
        rows, tag = d.tag_rows("r")
        source += f" CROSS JOIN {rows}"
        columns.append(f"{tag} AS tag")
    if grain is not None:
        columns.append(f"{d.floor_int(f'r.start_time / {grain}')} * {grain} AS bucket")
        where = f"({where}) AND {_SANE}"
    inner = f"SELECT {', '.join(columns)} FROM {source} WHERE {where}"
    return f"(SELECT x.*, {latency_bin_sql('x.lat')} AS bin FROM ({inner}) x)"


def measure_sql(d: Dialect, *, raw: bool, sign: int = 1) -> str:
    """The measures, added up: over :func:`raw_rows` (``raw``) or over rollup rows. ``sign``
    ``-1`` negates the sums of raw rows (a maximum stays: it cannot be taken back)."""
    parts = []
    for name, value, merge in _MEASURES:
        if not raw:
            parts.append(f"{'MAX' if merge == 'max' else 'SUM'}({name})")
        elif merge == "max":
            parts.append("0" if sign < 0 else f"MAX({value})")
        elif merge == "count":
            parts.append(f"SUM({value}) * {sign}" if sign != 1 else f"SUM({value})")
        else:  # a float total: never "integer overflow", whatever a row holds
            parts.append(f"{d.total(value)} * {sign}" if sign != 1 else d.total(value))
    return ", ".join(parts)


def _upsert_sql(d: Dialect, rollup: Rollup, where: str, sign: int) -> str:
    keys = ", ".join(rollup.keys)
    merges = ", ".join(
        f"{name} = {d.greatest(f'{rollup.table}.{name}', f'excluded.{name}')}"
        if merge == "max"
        else f"{name} = {rollup.table}.{name} + excluded.{name}"
        for name, _, merge in _MEASURES
    )
    rows = raw_rows(d, where, grain=rollup.grain, tags=rollup.tags)
    # Ordered, so concurrent writers (PostgreSQL) lock rows in one order: no deadlock.
    return (
        f"INSERT INTO {rollup.table} (workspace_id, bucket, {keys}, {', '.join(MEASURES)}) "
        f"SELECT workspace_id, bucket, {keys}, {measure_sql(d, raw=True, sign=sign)} "
        f"FROM {rows} y GROUP BY workspace_id, bucket, {keys} "
        f"ORDER BY workspace_id, bucket, {keys} "
        f"ON CONFLICT (workspace_id, bucket, {keys}) DO UPDATE SET {merges}"
    )


def derive(d: Dialect, where: str, *args: Any, sign: int = 1, new: bool = True) -> Op[None]:
    """Add the requests ``where`` selects (SQL over ``requests r``; parameters ``args``) to
    every rollup, or take them away (``sign=-1``). ``new`` ones also get their filter-menu
    values, string metadata and tag rows."""
    for rollup in ROLLUPS:
        yield from execute(_upsert_sql(d, rollup, where, sign), *args)
    if sign > 0 and new:
        yield from execute(_facets_sql(d, where), *args)
        yield from execute(d.copy_metadata_sql(where), *args)
        yield from d.save_tags(where, *args)


def backfill(d: Dialect) -> Op[None]:
    """Add the requests logged before the rollups existed (up to ``rollup_backfill.upto``,
    which their migration recorded): once, in the start-up transaction after it."""
    pending = yield from fetch("SELECT upto FROM rollup_backfill")
    for (upto,) in pending:
        if upto:
            yield from derive(d, "r.id <= $1", upto)
    if pending:
        yield from execute("DELETE FROM rollup_backfill")


def _facets_sql(d: Dialect, where: str) -> str:
    kinds = " UNION ".join(
        f"SELECT r.workspace_id, '{kind}' AS kind, r.{column} AS value FROM requests r "
        f"WHERE ({where}) AND r.{column} IS NOT NULL AND r.{column} <> ''"
        for kind, column in (
            ("prompts", "prompt_name"),
            ("providers", "provider"),
            ("models", "model"),
            ("statuses", "status"),
        )
    )
    rows, tag = d.tag_rows("r")
    tags = f"SELECT r.workspace_id, 'tags', {tag} FROM requests r CROSS JOIN {rows} WHERE {where}"
    # "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT.
    return (
        "INSERT INTO request_facets (workspace_id, kind, value) "
        f"SELECT * FROM ({kinds} UNION {tags}) f WHERE true ORDER BY 1, 2, 3 "
        "ON CONFLICT DO NOTHING"
    )


@dataclass(frozen=True, slots=True)
class Sums:
    """Measures added up over some requests (``values`` in MEASURES order)."""

    values: tuple[float, ...]

    def __getitem__(self, name: str) -> float:
        return self.values[MEASURES.index(name)]

    @property
    def hist(self) -> list[int]:
        return [int(v) for v in self.values[_FIRST_BIN : _FIRST_BIN + BINS]]

    def percentile(self, q: float) -> float | None:
        return percentile(self.hist, q, largest=self["latency_max"])


def fold(rows: Sequence[Row], offset: int) -> Sums:
    """The measure columns of ``rows`` (from column ``offset`` on) added up."""
    sums = [0.0] * len(MEASURES)
    for row in rows:
        for i, (_, _, merge) in enumerate(_MEASURES):
            raw = row[offset + i]
            if raw is None or isinstance(raw, str | bytes):
                continue
            value = float(raw)
            if not math.isfinite(value):
                continue
            sums[i] = max(sums[i], value) if merge == "max" else sums[i] + value
    return Sums(tuple(sums))


def percentile(hist: Sequence[int], q: float, *, largest: float) -> float | None:
    """The ``q`` quantile (0..1) of the latencies counted in ``hist``, interpolated within its
    bucket (geometrically; linearly in the first), at most ``largest``; None when empty."""
    total = sum(count for count in hist if count > 0)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for k, count in enumerate(hist):
        if count <= 0:
            continue
        if seen + count >= rank:
            share = min(1.0, max(0.0, (rank - seen) / count))
            if k == 0:
                value = EDGES[0] * share
            else:
                low = EDGES[k - 1]
                high = EDGES[k] if k < len(EDGES) else max(largest, low)
                value = low * (high / low) ** share
            return min(value, largest) if largest > 0 else value
        seen += count
    return largest
