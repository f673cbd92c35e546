"""Rollups: the request log summed per time bucket, kept up to date as requests are stored.

Five tables, each keyed by workspace, bucket (its start, epoch seconds) and a few columns;
a row holds what the dashboard adds up (requests, tokens, logged prices and the tokens of
requests logged without one, latency sum and maximum, scores) and a latency histogram:

- ``request_daily`` and ``request_hourly``: day or hour, provider, model, status: the
  overview, and every filter made only of provider, model, status and a time range;
- ``request_prompt_daily``: day, prompt name and version, provider, model, status: per-prompt
  and per-version metrics, and filters by prompt;
- ``request_tag_daily`` and ``request_tag_hourly``: day or hour, tag, provider, model,
  status: filters by tag.

:func:`derive` adds the requests it selects to every rollup (or, ``sign=-1``, takes them
away: ``track.prompt`` and ``track.score`` move a request between rows) with one ``INSERT
... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` per table, in the transaction that stores
them, and keeps what filters read beside the log: the filter menus' values
(``request_facets``), string metadata values (``request_metadata``, beside those
``track.metadata`` writes) and, where the dialect keeps them, tag rows.

Latency percentiles come from the histogram: 48 buckets whose edges grow by 2^(1/3) (26%)
from 10 ms to 413 s, so a percentile read from it is within about 13% of the exact value
(and never above the largest latency seen). The same sums over raw rows (:func:`raw_sums`)
give the same shape: the parts of a time range that do not fill a whole bucket, and filters
no rollup answers, read the log itself that way.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from promptrun.server.store.base import RequestRow
from promptrun.server.store.queries._sql import Op, Row, execute, executemany, fetch
from promptrun.server.store.queries.dialect import Dialect

__all__ = [
    "BINS",
    "BY_MODEL",
    "BY_PROMPT",
    "BY_TAG",
    "DAILY",
    "EDGES",
    "HOURLY",
    "MEASURES",
    "PROMPTS",
    "ROLLUPS",
    "TAGS",
    "TAGS_DAILY",
    "Rollup",
    "Sums",
    "backfill",
    "bin_of",
    "derive",
    "derive_facets",
    "fold",
    "latency_bin_sql",
    "percentile",
    "raw_rows",
    "raw_sums",
    "rollup_sums_sql",
    "save_facets",
]

_decode = msgspec.json.decode
# Histogram edges in seconds: bucket 0 is under 10 ms, bucket k is [EDGES[k-1], EDGES[k]),
# the last is 413 s and over.
EDGES: tuple[float, ...] = tuple(0.01 * 2 ** (k / 3) for k in range(47))
BINS = len(EDGES) + 1
HIST = tuple(f"h{k}" for k in range(BINS))


def bin_of(latency: float) -> int:
    """The histogram bucket of ``latency`` seconds."""
    return bisect.bisect_right(EDGES, latency)


def latency_bin_sql(latency: str) -> str:
    """SQL for the histogram bucket of the expression ``latency`` (the edges of bin_of): a
    binary search, six comparisons, rather than a chain of forty-seven."""

    def search(low: int, high: int) -> str:  # the bucket is one of low..high
        if low == high:
            return str(low)
        middle = (low + high + 1) // 2  # bucket >= middle exactly when latency >= EDGES[middle - 1]
        return (
            f"CASE WHEN {latency} < {EDGES[middle - 1]!r} THEN {search(low, middle - 1)} "
            f"ELSE {search(middle, high)} END"
        )

    return search(0, BINS - 1)


@dataclass(frozen=True, slots=True)
class Rollup:
    """A rollup table: its bucket size in seconds and its key columns after the workspace and
    the bucket (each also a column of :func:`raw_rows`)."""

    table: str
    grain: int
    keys: tuple[str, ...]
    tags: bool = False  # one row per tag of each request


_MODEL = ("provider", "model", "status")
DAILY = Rollup("request_daily", 86400, _MODEL)
HOURLY = Rollup("request_hourly", 3600, _MODEL)
PROMPTS = Rollup("request_prompt_daily", 86400, ("prompt_name", "prompt_version", *_MODEL))
TAGS_DAILY = Rollup("request_tag_daily", 86400, ("tag", *_MODEL), tags=True)
TAGS = Rollup("request_tag_hourly", 3600, ("tag", *_MODEL), tags=True)
ROLLUPS = (DAILY, HOURLY, PROMPTS, TAGS_DAILY, TAGS)
# Which rollups answer a filter, coarsest first: whole days from the daily one, whole hours
# of the days left from the hourly one, and the rest from the log.
BY_MODEL = (DAILY, HOURLY)
BY_PROMPT = (PROMPTS,)
BY_TAG = (TAGS_DAILY, TAGS)

# (column, how rows merge, its value summed over the raw rows of one histogram bucket ``b``).
# Raw rows are first grouped by their keys and histogram bucket (so a row's bucket is worked
# out once, not once per histogram column), then the buckets are spread over h0..h47.
_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("requests", "count", "COUNT(*)"),
    ("input_tokens", "sum", "input_tokens"),
    ("output_tokens", "sum", "output_tokens"),
    ("logged_price", "sum", "CASE WHEN price > 0 THEN price ELSE 0 END"),
    ("unpriced_input", "sum", "CASE WHEN price > 0 THEN 0 ELSE input_tokens END"),
    ("unpriced_output", "sum", "CASE WHEN price > 0 THEN 0 ELSE output_tokens END"),
    ("latency_sum", "sum", "lat"),
    ("latency_max", "max", "lat"),
    ("score_sum", "sum", "COALESCE(score, 0)"),
    ("scored", "count", "COUNT(score)"),
    *((name, "count", "") for name in HIST),
)
MEASURES = tuple(name for name, _, _ in _MEASURES)
_FIRST_BIN = MEASURES.index(HIST[0])


def raw_rows(
    d: Dialect,
    where: str,
    *,
    grain: int | None = None,
    tags: bool = False,
    hint: str = "",
    source: str = "",
    limit: int | None = None,
) -> str:
    """A subquery: the requests ``where`` selects (SQL over ``requests r``), with the columns
    rollups are keyed and summed by, their latency ``lat``, histogram ``bin`` and, given a
    ``grain``, their ``bucket`` (rows without a sane start time are left out then).
    ``hint`` follows ``requests r`` (an index hint); ``source`` replaces ``requests r`` (a
    set of ids joined to it, read first); ``limit`` stops after that many requests."""
    latency = "CASE WHEN r.end_time > r.start_time THEN r.end_time - r.start_time ELSE 0 END"
    columns = [
        "r.workspace_id", "r.start_time", "r.provider", "r.model", "r.status",
        "COALESCE(r.prompt_name, '') AS prompt_name",
        "COALESCE(r.prompt_version, 0) AS prompt_version",
        "r.input_tokens", "r.output_tokens", "r.price", "r.score", f"{latency} AS lat",
    ]  # fmt: skip
    source = source or f"requests r {hint}"
    if tags:
        rows, tag = d.tag_rows("r")
        source += f" CROSS JOIN {rows}"
        columns.append(f"{tag} AS tag")
    if grain is not None:
        columns.append(f"{d.floor_int(f'r.start_time / {grain}')} * {grain} AS bucket")
        # "+": not a condition to pick an index by (SQLite would walk all of start_time).
        where = f"({where}) AND +r.start_time >= 0 AND +r.start_time < 100000000000"
    end = d.fence if limit is None else f" LIMIT {int(limit)}"  # a LIMIT fences as well
    inner = f"SELECT {', '.join(columns)} FROM {source} WHERE {where}{end}"
    return f"(SELECT x.*, {latency_bin_sql('x.lat')} AS bin FROM ({inner}) x{d.fence})"


def raw_sums(
    d: Dialect,
    where: str,
    group: Sequence[str],
    *,
    grain: int | None = None,
    tags: bool = False,
    sign: int = 1,
    hint: str = "",
    source: str = "",
    limit: int | None = None,
) -> str:
    """A SELECT of ``group`` (columns of :func:`raw_rows`, or SQL over them) and every
    measure, summed over the requests ``where`` selects, one row per group. ``sign`` -1
    negates the sums (a maximum stays: it cannot be taken back)."""
    keys = [f"{key} AS g{i}" for i, key in enumerate(group)]
    names = [f"g{i}" for i in range(len(group))]
    firsts = []
    for name, merge, value in _MEASURES:
        if name.startswith("h"):
            continue
        if merge == "count":
            firsts.append(f"{value} AS {name}")
        elif merge == "max":
            firsts.append(f"MAX({value}) AS {name}")
        else:  # a float total: never "integer overflow", whatever a row holds
            firsts.append(f"{d.total(value)} AS {name}")
    first = (
        f"SELECT {', '.join([*keys, 'bin', *firsts])} FROM {raw_rows(d, where, grain=grain, tags=tags, hint=hint, source=source, limit=limit)} y "
        f"GROUP BY {', '.join([*(str(i + 1) for i in range(len(group))), str(len(group) + 1)])}"
    )
    seconds = []
    for name, merge, _ in _MEASURES:
        if name.startswith("h"):
            total = _count_sum(f"CASE WHEN bin = {name[1:]} THEN requests ELSE 0 END")
        elif merge == "max":
            seconds.append("0" if sign < 0 else f"MAX({name})")
            continue
        else:
            total = _count_sum(name) if merge == "count" else f"SUM({name})"
        seconds.append(total if sign > 0 else f"{total} * {sign}")
    grouped = f" GROUP BY {', '.join(names)}" if names else ""
    return f"SELECT {', '.join([*names, *seconds])} FROM ({first}) z{grouped}"


def _count_sum(value: str) -> str:
    """A sum of counts, as an integer: PostgreSQL sums BIGINT as NUMERIC, which reaches
    Python as Decimal (about ten times the cost of an int to read and add up)."""
    return f"CAST(SUM({value}) AS BIGINT)"


def rollup_sums_sql(group: Sequence[str]) -> str:
    """The measures of rollup rows summed (after ``group``), as :func:`raw_sums` gives them."""
    sums = {"max": lambda name: f"MAX({name})", "count": _count_sum}
    parts = [sums.get(merge, lambda name: f"SUM({name})")(name) for name, merge, _ in _MEASURES]
    return ", ".join([*group, *parts])


def _upsert_sql(d: Dialect, rollup: Rollup, where: str, sign: int) -> str:
    keys = ", ".join(rollup.keys)
    merges = ", ".join(
        f"{name} = {d.greatest(f'{rollup.table}.{name}', f'excluded.{name}')}"
        if merge == "max"
        else f"{name} = {rollup.table}.{name} + excluded.{name}"
        for name, merge, _ in _MEASURES
    )
    sums = raw_sums(
        d,
        where,
        ("workspace_id", "bucket", *rollup.keys),
        grain=rollup.grain,
        tags=rollup.tags,
        sign=sign,
    )
    # Ordered, so concurrent writers (PostgreSQL) lock rows in one order: no deadlock.
    return (
        f"INSERT INTO {rollup.table} (workspace_id, bucket, {keys}, {', '.join(MEASURES)}) "
        f"SELECT * FROM ({sums}) s WHERE true ORDER BY {', '.join(f'g{i}' for i in range(len(rollup.keys) + 2))} "
        f"ON CONFLICT (workspace_id, bucket, {keys}) DO UPDATE SET {merges}"
    )


def derive(
    d: Dialect, where: str, *args: Any, sign: int = 1, rows: bool = True, facets: bool = True
) -> Op[None]:
    """Add the requests ``where`` selects (SQL over ``requests r``; parameters ``args``) to
    every rollup, or take them away (``sign=-1``); added ones also get their string metadata
    and tag rows (``rows``) and filter-menu values (``facets``)."""
    for rollup in ROLLUPS:
        yield from execute(_upsert_sql(d, rollup, where, sign), *args)
    if sign > 0 and rows:
        yield from execute(d.copy_metadata_sql(where), *args)
        yield from d.save_tags(where, *args)
    if sign > 0 and facets:
        yield from derive_facets(d, where, *args)


def derive_facets(d: Dialect, where: str, *args: Any) -> Op[None]:
    """Offer the values of the requests ``where`` selects in the filter menus."""
    yield from execute(_facets_sql(d, where), *args)


def save_facets(d: Dialect, workspace: int, rows: Sequence[RequestRow]) -> Op[None]:
    """The filter-menu values of new requests, from the rows themselves (a batch has few)."""
    found: set[tuple[str, str]] = set()
    for row in rows:
        for kind, value in (
            ("prompts", row.prompt_name),
            ("providers", row.provider),
            ("models", row.model),
            ("statuses", row.status),
        ):
            if value:
                found.add((kind, value))
        if row.tags != "[]":
            tags = _decode(row.tags)
            for tag in tags if isinstance(tags, list) else ():
                text = tag if isinstance(tag, str) else msgspec.json.encode(tag).decode()
                found.add(("tags", text))
    yield from executemany(
        "INSERT INTO request_facets (workspace_id, kind, value) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        [(workspace, kind, value) for kind, value in sorted(found)],
    )


def backfill(d: Dialect) -> Op[None]:
    """Add the requests logged before the rollups existed (up to ``rollup_backfill.upto``,
    which their migration recorded): once, in the start-up transaction after it."""
    pending = yield from fetch("SELECT upto FROM rollup_backfill")
    for (upto,) in pending:
        if upto:
            yield from derive(d, "r.id <= $1", upto)
            yield from execute("ANALYZE request_metadata")  # many rows new to the planner
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


_MAX_AT = MEASURES.index("latency_max")


def _number(value: Any) -> float:
    """A sum PostgreSQL gives as a Decimal, as a float; NaN, infinities and what is not a
    number at all (rows written around the server) as 0."""
    if isinstance(value, Decimal):
        number = float(value)
        return number if number - number == 0 else 0.0
    return 0.0


def _finite(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with what is not a finite number as 0 (as they are when all are: their sum,
    at C speed, is then an int or a finite float)."""
    try:
        total = sum(values)
    except (TypeError, OverflowError):  # text, NULL; an integer beyond a float's range
        total = None
    if total.__class__ is int or (total.__class__ is float and total - total == 0):
        return values
    return tuple(
        v if (v.__class__ is int or v.__class__ is float) and v - v == 0 else _number(v)
        for v in values
    )


def fold(rows: Sequence[Row], offset: int) -> Sums:
    """The measure columns of ``rows`` (from column ``offset`` on) added up; what is not a
    finite number (rows written around the server) counts as nothing."""
    width = len(MEASURES)
    clean = [_finite(tuple(row[offset : offset + width])) for row in rows]
    if len(clean) == 1:
        return Sums(clean[0])
    if not clean:
        return Sums((0,) * width)
    columns = zip(*clean, strict=True)
    return Sums(tuple(max(c) if i == _MAX_AT else sum(c) for i, c in enumerate(columns)))


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
