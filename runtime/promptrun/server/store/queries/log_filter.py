"""A request-log filter as SQL, and what can be counted and summed for it without scanning.

:class:`Filter` turns a :class:`~promptrun.server.store.base.RequestQuery` into conditions
over ``requests r``. Columns (prompt, version, provider, model, status) and the time range are
plain conditions the filter's index answers; tags, metadata and text have their own indexes
(``request_tags`` on SQLite, ``request_metadata``, the text index) and can be written two
ways: tested on each row (to walk an index in the list's order) or read as a set of ids (to
gather few matches). :func:`narrowest` picks which to read as a set: the one with the fewest
matches, counted cheaply.

:func:`rollup_sums` adds up what a filter of columns, tag and time matches from the rollups
(``queries/rollups.py``): whole days from a daily rollup, whole hours from an hourly one, the
rest from the log, and, where rollups are filled after ingestion (SQLite), the requests they
do not hold yet from the log too. :func:`capped_count` counts any filter up to its cap + 1:
``CAP``, or ``TEXT_CAP`` for a text search (see :attr:`Filter.cap`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from promptrun.server.store.base import RequestQuery
from promptrun.server.store.queries._sql import Op, fetch, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.metadata_rows import copies
from promptrun.server.store.queries.rollups import (
    BY_MODEL,
    BY_PROMPT,
    BY_TAG,
    Rollup,
    Sums,
    fold,
    raw_sums,
    rollup_sums_sql,
)

__all__ = [
    "CAP",
    "TEXT_CAP",
    "Filter",
    "Sets",
    "capped_count",
    "column_hint",
    "driver",
    "matchable",
    "narrowest",
    "rollup_sums",
    "rollups_for",
]

CAP = 10_000  # matches counted (and totals added up from rows) when no rollup answers
# A text search counts less far: its index (pg_trgm, FTS) finds candidates that each need a
# look at the row, so counting to CAP cost a 10M-row log about 120 ms (to TEXT_CAP: 15 ms).
TEXT_CAP = 1_000
_PLACEHOLDER = re.compile(r"\$(\d+)")
_COLUMNS = ("prompt_name", "prompt_version", "provider", "model", "status")
Sets = frozenset[str]  # which of "tag", "meta", "text" to read as sets of ids


class Filter:
    """A query's conditions over ``requests r`` and their parameters ($1 is the workspace).

    Fragments add parameters as they are made; :meth:`bind` keeps only those a statement
    uses (PostgreSQL refuses unused ones)."""

    def __init__(self, d: Dialect, workspace: int, query: RequestQuery) -> None:
        self.d = d
        self.query = query
        self.args: list[Any] = [workspace]
        self.columns = ["r.workspace_id = $1"]
        for column in _COLUMNS:
            value = getattr(query, column)
            if value is not None:
                self.columns.append(f"r.{column} = {self.add(value)}")
        self.tag = self.add(query.tag) if query.tag is not None else None
        self.meta_key = self.add(query.meta_key) if query.meta_key is not None else None
        self.meta_value = self.add(query.meta_value) if query.meta_value is not None else None
        self.text = query.text or None
        self.pattern = self.phrase = None
        if self.text is not None:
            self.pattern = self.add(d.text_pattern(self.text))
            phrase = d.text_phrase(self.text)
            self.phrase = self.add(phrase) if phrase is not None else None

    @property
    def cap(self) -> int:
        """How far this filter's matches are counted: ``TEXT_CAP`` with text, else ``CAP``."""
        return TEXT_CAP if self.text is not None else CAP

    def add(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def bind(self, sql: str) -> tuple[Any, ...]:
        """``sql`` and the parameters it uses, renumbered from $1."""
        used: dict[int, int] = {}

        def renumber(match: re.Match[str]) -> str:
            return f"${used.setdefault(int(match.group(1)), len(used) + 1)}"

        compact = _PLACEHOLDER.sub(renumber, sql)
        return (compact, *(self.args[index - 1] for index in used))

    def time(self, since: float | None, until: float | None) -> list[str]:
        found = []
        if since is not None:
            found.append(f"r.start_time >= {self.add(since)}")
        if until is not None:
            found.append(f"r.start_time < {self.add(until)}")
        return found

    # the sets: FROM items ``s`` with a column ``s.id``

    def text_set(self) -> str | None:
        """The text index's matches, where reading it needs no row (SQLite's FTS)."""
        if self.text is None or self.phrase is None or self.pattern is None:
            return None
        return self.d.text_source("$1", self.phrase, self.pattern)

    def tag_set(self) -> str | None:
        return None if self.tag is None else self.d.tag_source("$1", self.tag)

    def meta_set(self, *, copied: bool = False, alias: str = "s") -> str | None:
        """The metadata filter's matches as a FROM item ``alias`` (column ``id``); with
        ``copied``, also the request columns each metadata row copies (see meta_rows)."""
        if self.meta_key is None:
            return None
        m, u = (f", {copies('m')}", f", {copies('u')}") if copied else ("", "")
        value = "" if self.meta_value is None else f" AND m.value = {self.meta_value}"
        indexed = (
            f"SELECT m.request_id AS id{m} FROM request_metadata m "
            f"WHERE m.workspace_id = $1 AND m.key = {self.meta_key}{value}"
        )
        if not self.d.defers:
            return f"({indexed}) {alias}"
        tail = (
            f"SELECT u.id{u} FROM requests u WHERE u.id > {self.d.derived_upto} "
            f"AND u.workspace_id = $1 AND {self._logged('u')}"
        )
        return f"({indexed} UNION ALL {tail}) {alias}"

    def meta_rows(self) -> str | None:
        """The metadata filter's matches as a FROM item ``r`` standing in for the requests:
        their metadata rows, which carry every column a page, a count and totals read
        (``queries/metadata_rows.py``), from one range of one index. None unless the
        metadata key is all the filter holds besides the time range."""
        if len(self.columns) > 1 or self.tag or self.text:
            return None
        return self.meta_set(copied=True, alias="r")

    def set_of(self, name: str) -> str | None:
        return {"text": self.text_set, "tag": self.tag_set, "meta": self.meta_set}[name]()

    # per-row tests

    def meta_row(self, row: str) -> str:
        assert self.meta_key is not None
        value = "" if self.meta_value is None else f" AND m.value = {self.meta_value}"
        stored = (
            f"EXISTS (SELECT 1 FROM request_metadata m WHERE m.request_id = {row}.id "
            f"AND m.key = {self.meta_key}{value})"
        )
        if not self.d.defers:
            return stored
        return f"({stored} OR ({row}.id > {self.d.derived_upto} AND {self._logged(row)}))"

    def _logged(self, row: str) -> str:
        """A request not caught up yet: its logged metadata, unless track.metadata has set
        the key since (request_metadata holds that value)."""
        assert self.meta_key is not None
        return (
            f"{self.d.metadata_filter(row, self.meta_key, self.meta_value)} AND NOT EXISTS "
            f"(SELECT 1 FROM request_metadata n WHERE n.request_id = {row}.id "
            f"AND n.key = {self.meta_key})"
        )

    def where(
        self, *, sets: Sets = frozenset(), time: bool = True, text: bool = True, skip: str = ""
    ) -> str:
        """Every condition (the text's only if ``text``; none of ``skip``, a set read as the
        rows' source); tags, metadata and text are read as sets of ids when named in ``sets``
        (and the dialect has such a set), else tested on each row."""
        parts = list(self.columns)
        if time:
            parts += self.time(self.query.since, self.query.until)
        for name, row in (
            ("tag", self._tag_row),
            ("meta", self._meta_row),
            ("text", self._text_row),
        ):
            if (name == "text" and not text) or name == skip:
                continue
            if getattr(self, name if name != "meta" else "meta_key") is None:
                continue
            source = self.set_of(name) if name in sets else None
            parts.append(f"r.id IN (SELECT s.id FROM {source})" if source else row())
        return " AND ".join(parts)

    def _tag_row(self) -> str:
        assert self.tag is not None
        return self.d.tag_filter(self.tag)

    def _meta_row(self) -> str:
        return self.meta_row("r")

    def _text_row(self) -> str:
        assert self.pattern is not None
        return self.d.text_filter(self.pattern)


def matchable(d: Dialect, query: RequestQuery) -> bool:
    """False when a filter holds text the database cannot hold, so nothing can match."""
    return d.text_ok(
        query.prompt_name, query.tag, query.provider, query.model, query.status, query.text,
        query.meta_key, query.meta_value,
    )  # fmt: skip


def rollups_for(query: RequestQuery) -> tuple[Rollup, ...] | None:
    """The rollups that answer this filter exactly (coarsest first), if any do."""
    if query.text or query.meta_key is not None:
        return None
    prompt = query.prompt_name is not None or query.prompt_version is not None
    if query.tag is not None:
        return None if prompt else BY_TAG
    return BY_PROMPT if prompt else BY_MODEL


def rollup_sums(
    d: Dialect,
    workspace: int,
    query: RequestQuery,
    rollups: Sequence[Rollup],
    group: Sequence[str],
    *,
    slots: tuple[float, float] | None = None,
) -> Op[list[tuple[tuple[Any, ...], Sums]]]:
    """Measures summed per ``group`` (columns of the rollups and of raw rows alike) for a
    filter ``rollups`` answer. ``slots`` (start, width) adds a first group column, the time
    slot's number; a rollup coarser than the slots is skipped."""
    spans: list[tuple[float | None, float | None]] = [(query.since, query.until)]
    found: list[tuple[tuple[Any, ...], Sums]] = []
    width = len(group) + (slots is not None)

    def keys(f: Filter, time_column: str) -> list[str]:
        names = list(group)
        if slots is not None:
            start, step = f.add(float(slots[0])), f.add(float(slots[1]))
            names.insert(0, d.floor_int(f"({time_column} - {start}) / {step}"))
        return names

    read_any = False
    for rollup in rollups:
        grain = rollup.grain
        if slots is not None and (slots[0] % grain or slots[1] % grain):
            continue
        left: list[tuple[float | None, float | None]] = []
        for since, until in spans:
            low = None if since is None else math.ceil(since / grain) * grain
            high = None if until is None else math.floor(until / grain) * grain
            if low is not None and high is not None and low >= high:
                left.append((since, until))
                continue
            f = Filter(d, workspace, RequestQuery())
            conditions = ["workspace_id = $1"]
            for column in (*_COLUMNS, "tag"):
                value = getattr(query, column)
                if value is not None:
                    conditions.append(f"{column} = {f.add(value)}")
            if low is not None:
                conditions.append(f"bucket >= {f.add(float(low))}")
            if high is not None:
                conditions.append(f"bucket < {f.add(float(high))}")
            names = keys(f, "bucket")
            grouped = f" GROUP BY {', '.join(names)}" if names else ""
            rows = yield from fetch(
                *f.bind(
                    f"SELECT {rollup_sums_sql(names)} FROM {rollup.table} "
                    f"WHERE {' AND '.join(conditions)}{grouped}"
                )
            )
            found += [(tuple(row[:width]), fold([row], width)) for row in rows]
            read_any = True
            if since is not None and low is not None and since < low:
                left.append((since, low))
            if until is not None and high is not None and high < until:
                left.append((high, until))
        spans = left
    # The log itself: what no whole bucket covers (of the requests the rollups hold) and,
    # where they are filled after ingestion, every request they do not hold yet.
    ranges = [(since, until, "", "") for since, until in spans]
    if read_any and d.defers:
        ranges = [(since, until, f"r.id <= {d.derived_upto}", "") for since, until in spans]
        # The newest ids: read by id, whatever the time range (an index would read it all).
        ranges.append((query.since, query.until, f"r.id > {d.derived_upto}", d.by_id))
    for since, until, ids, hint in ranges:
        f = Filter(d, workspace, query)
        conditions = [f.where(time=False), *f.time(since, until), *([ids] if ids else [])]
        sums = raw_sums(d, " AND ".join(conditions), keys(f, "start_time"), hint=hint)
        rows = yield from fetch(*f.bind(sums))
        found += [(tuple(row[:width]), fold([row], width)) for row in rows]
    return found


def _alone(query: RequestQuery, name: str) -> RequestQuery:
    """The query's part that the named set alone filters by (with the time range)."""
    if name == "tag":
        return RequestQuery(tag=query.tag, since=query.since, until=query.until)
    if name == "meta":
        return RequestQuery(meta_key=query.meta_key, meta_value=query.meta_value)
    return RequestQuery(text=query.text)


def narrowest(d: Dialect, workspace: int, query: RequestQuery) -> Op[Sets]:
    """Which of the filter's sets (tag, metadata, text) to read as a set of ids: the one with
    the fewest matches when it has fewer than the filter's columns and time range alone;
    none when there is no choice to make."""
    f = Filter(d, workspace, query)
    named = [name for name in ("text", "meta", "tag") if f.set_of(name) is not None]
    columns = RequestQuery(
        **{c: getattr(query, c) for c in _COLUMNS}, since=query.since, until=query.until
    )
    plain = columns != RequestQuery()
    if len(named) + plain < 2:
        return frozenset(named)
    sizes: list[tuple[int, str]] = []
    if plain:
        parts = yield from rollup_sums(d, workspace, columns, rollups_for(columns) or BY_MODEL, ())
        sizes.append((sum(int(s["requests"]) for _, s in parts), ""))
    for name in named:
        alone = _alone(query, name)
        if name == "tag":
            parts = yield from rollup_sums(d, workspace, alone, BY_TAG, ())
            sizes.append((sum(int(s["requests"]) for _, s in parts), name))
        else:
            # Counted as far as any other set (CAP), so that sizes compare.
            only = Filter(d, workspace, alone)
            sizes.append(((yield from capped_count(d, only, frozenset({name}), cap=CAP)), name))
    best = min(sizes)[1]
    return frozenset({best}) if best else frozenset()


_COLUMN_INDEX = {
    "prompt_name": "requests_prompt",
    "provider": "requests_provider",
    "model": "requests_model",
    "status": "requests_status",
}


def column_hint(d: Dialect, workspace: int, query: RequestQuery) -> Op[str]:
    """The index hint for the filter column with the fewest requests, when several columns
    could lead (SQLite keeps no per-value statistics; the rollups count each)."""
    given = [(c, getattr(query, c)) for c in _COLUMN_INDEX if getattr(query, c) is not None]
    if len(given) < 2 or not d.index_hint("x"):
        return ""
    counts = []
    for column, value in given:
        alone = RequestQuery(**{column: value})
        parts = yield from rollup_sums(d, workspace, alone, rollups_for(alone) or BY_MODEL, ())
        counts.append((sum(s["requests"] for _, s in parts), column))
    return d.index_hint(_COLUMN_INDEX[min(counts)[1]])


def driver(f: Filter, sets: Sets, hint: str = "") -> tuple[str, str]:
    """FROM and WHERE reading the filter's matches: the set named in ``sets`` (if any) first,
    every other condition tested on its rows (a metadata filter alone: its own rows, which
    stand in for the requests); else the requests through an index."""
    if "meta" in sets and (rows := f.meta_rows()) is not None:
        return rows, f.where(skip="meta")
    for name in sets:
        source = f.set_of(name)
        if source is not None:
            # CROSS JOIN: SQLite reads the set first (PostgreSQL plans as it likes).
            return (
                f"{source} CROSS JOIN requests r",
                f"r.id = s.id AND {f.where(skip=name)}",
            )
    return f"requests r {hint}", f.where()


def capped_count(
    d: Dialect, f: Filter, sets: Sets, hint: str = "", *, cap: int | None = None
) -> Op[int]:
    """How many requests match, counting no further than the cap + 1 (``f.cap`` unless
    given)."""
    source, where = driver(f, sets, hint)
    limit = (f.cap if cap is None else cap) + 1
    count = yield from fetchval(
        *f.bind(f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT {limit}) c")
    )
    return int(count)
