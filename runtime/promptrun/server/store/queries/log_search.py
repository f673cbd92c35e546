"""The request log as the dashboard reads it at millions of rows.

- How many requests a filter matches: exact from the rollups when the filter is made of what
  they are keyed by (time, provider, model, status, prompt and version, or tag), else counted
  up to ``CAP`` (a page then says "10,000+").
- Totals and latency percentiles of the matches: from the rollups (plus the raw rows of the
  part of a time range that does not fill a whole bucket), or from the matching rows when there
  are at most ``CAP`` of them.
- A page of matches sorted by time, latency, tokens or cost, with keyset pagination: a page
  continues from the sort key and id of the row before it, so the thousandth page costs what
  the first does. Few matches (at most ``CAP``): they are gathered through the filter's own
  index and sorted. Many: the sort key's index is walked and each row tested, which finds a
  page after a few hundred rows at most. Cost is priced at read time from the workspace's
  price table, so no index can walk it: sorting by cost needs a filter matching at most
  ``CAP`` requests (otherwise the page is sorted by time and says why); so does sorting a
  text search by latency or tokens where the text index is not the row's own (SQLite).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from promptrun.server.store.base import (
    Cursor,
    LogStats,
    ModelUsage,
    PageRequest,
    RequestPage,
    RequestQuery,
)
from promptrun.server.store.queries._sql import Op, fetch, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.requests import SUMMARY_NAMES, _stored_json, summary
from promptrun.server.store.queries.rollups import (
    HOURLY,
    PROMPTS,
    TAGS,
    Rollup,
    Sums,
    fold,
    raw_sums,
    rollup_sums_sql,
)

__all__ = [
    "CAP",
    "count_matches",
    "list_requests",
    "request_page",
    "request_stats",
    "rollup_for",
    "rollup_sums",
    "stats_by_model",
]

CAP = 10_000
_WINDOW = 2_000  # rows of the time index a text search reads at a time (SQLite, many matches)
_WINDOWS = 50  # then it returns what it found, with a cursor to go on from
SORT_KEYS = {
    "time": "r.start_time",
    "latency": "(r.end_time - r.start_time)",
    "tokens": "(r.input_tokens + r.output_tokens)",
}
_SORT_INDEX = {"latency": "requests_latency", "tokens": "requests_tokens"}
_COLUMNS = ", ".join(f"r.{name}" for name in SUMMARY_NAMES)
_PLACEHOLDER = re.compile(r"\$(\d+)")


class _Filter:
    """A query's conditions over ``requests r`` and their parameters ($1 is the workspace)."""

    def __init__(self, d: Dialect, workspace: int, query: RequestQuery) -> None:
        self.d = d
        self.query = query
        self.args: list[Any] = [workspace]
        self.columns = ["r.workspace_id = $1"]
        for column, value in (
            ("prompt_name", query.prompt_name),
            ("prompt_version", query.prompt_version),
            ("provider", query.provider),
            ("model", query.model),
            ("status", query.status),
        ):
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

    def add(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def bind(self, sql: str, *more: Any) -> tuple[Any, ...]:
        """``sql`` and the parameters it uses, renumbered from $1: a statement is built from
        fragments that added parameters for others (PostgreSQL refuses unused ones)."""
        args = [*self.args, *more]
        used: dict[int, int] = {}

        def renumber(match: re.Match[str]) -> str:
            index = int(match.group(1))
            return f"${used.setdefault(index, len(used) + 1)}"

        compact = _PLACEHOLDER.sub(renumber, sql)
        return (compact, *(args[index - 1] for index in used))

    def time(self, since: float | None, until: float | None) -> list[str]:
        found = []
        if since is not None:
            found.append(f"r.start_time >= {self.add(since)}")
        if until is not None:
            found.append(f"r.start_time < {self.add(until)}")
        return found

    def text_source(self) -> str | None:
        """An index of the text matches that needs no row read (SQLite's FTS), if any."""
        if self.text is None or self.phrase is None or self.pattern is None:
            return None
        return self.d.text_source("$1", self.phrase, self.pattern)

    def meta_row(self, row: str) -> str:
        """SQL matching request ``row`` by the metadata filter, tested on that row."""
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
        """A request not caught up yet: its logged metadata, unless track.metadata set the
        key since (request_metadata holds that one)."""
        assert self.meta_key is not None
        return (
            f"{self.d.metadata_filter(row, self.meta_key, self.meta_value)} AND NOT EXISTS "
            f"(SELECT 1 FROM request_metadata n WHERE n.request_id = {row}.id "
            f"AND n.key = {self.meta_key})"
        )

    def meta_source(self) -> str:
        """A FROM item ``s`` (column ``s.id``) of the requests the metadata filter matches,
        from its index (and, not caught up yet, from the log)."""
        assert self.meta_key is not None
        value = "" if self.meta_value is None else f" AND m.value = {self.meta_value}"
        indexed = f"SELECT m.request_id AS id FROM request_metadata m WHERE m.key = {self.meta_key}{value}"
        if not self.d.defers:
            return f"({indexed}) s"
        tail = (
            f"SELECT u.id FROM requests u WHERE u.id > {self.d.derived_upto} "
            f"AND u.workspace_id = $1 AND {self._logged('u')}"
        )
        return f"({indexed} UNION ALL {tail}) s"

    def where(self, *, mode: str = "row", time: bool = True, text: bool = True) -> str:
        """Every condition (the text's only if ``text``). Tags, metadata and text are tested
        on each row (``row``: for walking an index in the list's order), or read from their
        own indexes as sets of ids (``set``: for gathering few matches)."""
        parts = list(self.columns)
        if time:
            parts += self.time(self.query.since, self.query.until)
        if self.tag is not None:
            source = self.d.tag_source("$1", self.tag) if mode == "set" else None
            if source is not None:
                parts.append(f"r.id IN (SELECT s.id FROM {source})")
            else:
                parts.append(self.d.tag_filter(self.tag))
        if self.meta_key is not None:
            if mode == "set":
                parts.append(f"r.id IN (SELECT s.id FROM {self.meta_source()})")
            else:
                parts.append(self.meta_row("r"))
        if text and self.text is not None and self.pattern is not None:
            source = self.text_source() if mode == "set" else None
            if source is not None:
                parts.append(f"r.id IN (SELECT s.id FROM {source})")
            else:
                parts.append(self.d.text_filter(self.pattern))
        return " AND ".join(parts)


def _matchable(d: Dialect, query: RequestQuery) -> bool:
    """False when a filter holds text the database cannot hold, so nothing can match."""
    return d.text_ok(
        query.prompt_name, query.tag, query.provider, query.model, query.status, query.text,
        query.meta_key, query.meta_value,
    )  # fmt: skip


def rollup_for(query: RequestQuery) -> Rollup | None:
    """The rollup that answers this filter exactly, if one does."""
    if query.text or query.meta_key is not None:
        return None
    if query.tag is not None:
        return None if query.prompt_name is not None or query.prompt_version is not None else TAGS
    if query.prompt_name is not None or query.prompt_version is not None:
        return PROMPTS
    return HOURLY


# -- sums: the rollups plus the raw rows they do not cover -------------------------------------


def rollup_sums(
    d: Dialect,
    workspace: int,
    query: RequestQuery,
    rollup: Rollup,
    group: Sequence[str],
    *,
    slots: tuple[float, float] | None = None,
) -> Op[list[tuple[tuple[Any, ...], Sums]]]:
    """Measures summed per ``group`` (columns of the rollup and of raw rows alike) for a
    filter the rollup answers: its whole buckets from the rollup, the partial ones from the
    log. ``slots`` (start, width) adds a first group column ``slot``, the time slot's number;
    slots narrower than the rollup's buckets are summed from the log."""
    grain = rollup.grain
    since, until = query.since, query.until
    low = None if since is None else math.ceil(since / grain) * grain
    high = None if until is None else math.floor(until / grain) * grain
    raw_spans: list[tuple[float | None, float | None]] = []
    whole: tuple[float | None, float | None] | None = (low, high)
    unaligned = slots is not None and (slots[1] % grain or slots[0] % grain)
    if unaligned or (low is not None and high is not None and low >= high):
        whole, raw_spans = None, [(since, until)]
    else:
        if since is not None and low is not None and since < low:
            raw_spans.append((since, low))
        if until is not None and high is not None and high < until:
            raw_spans.append((high, until))
    found: list[tuple[tuple[Any, ...], Sums]] = []
    width = len(group) + (slots is not None)

    def keys(f: _Filter, time_column: str) -> list[str]:
        found = list(group)
        if slots is not None:
            start, step = f.add(float(slots[0])), f.add(float(slots[1]))
            found.insert(0, d.floor_int(f"({time_column} - {start}) / {step}"))
        return found

    if whole is not None:
        f = _Filter(d, workspace, RequestQuery())
        conditions = ["workspace_id = $1"]
        for column, value in (
            ("prompt_name", query.prompt_name),
            ("prompt_version", query.prompt_version),
            ("provider", query.provider),
            ("model", query.model),
            ("status", query.status),
            ("tag", query.tag),
        ):
            if value is not None:
                conditions.append(f"{column} = {f.add(value)}")
        if whole[0] is not None:
            conditions.append(f"bucket >= {f.add(float(whole[0]))}")
        if whole[1] is not None:
            conditions.append(f"bucket < {f.add(float(whole[1]))}")
        names = keys(f, "bucket")
        grouped = f" GROUP BY {', '.join(names)}" if names else ""
        rows = yield from fetch(
            *f.bind(
                f"SELECT {rollup_sums_sql(names)} FROM {rollup.table} "
                f"WHERE {' AND '.join(conditions)}{grouped}"
            )
        )
        found += [(tuple(row[:width]), fold([row], width)) for row in rows]
    # The log itself: the partial buckets (of the requests the rollups hold) and, where they
    # are filled after ingestion, every request they do not hold yet.
    spans: list[tuple[float | None, float | None, str]] = [(since, until, "")]
    if whole is not None:
        held = f"r.id <= {d.derived_upto}" if d.defers else ""
        spans = [(start, end, held) for start, end in raw_spans]
        if d.defers:
            spans.append((since, until, f"r.id > {d.derived_upto}"))
    for start, end, ids in spans:
        f = _Filter(d, workspace, query)
        conditions = [f.where(time=False, mode="set"), *f.time(start, end)]
        where = " AND ".join([*conditions, ids] if ids else conditions)
        rows = yield from fetch(*f.bind(raw_sums(d, where, keys(f, "start_time"))))
        found += [(tuple(row[:width]), fold([row], width)) for row in rows]
    return found


_COLUMN_INDEX = {
    "prompt_name": "requests_prompt",
    "provider": "requests_provider",
    "model": "requests_model",
    "status": "requests_status",
}


def _narrowest(d: Dialect, workspace: int, query: RequestQuery) -> Op[str]:
    """The index hint for the filter column with the fewest requests, when several filter
    columns could lead (SQLite keeps no per-value statistics; the rollups count each)."""
    given = [(c, getattr(query, c)) for c in _COLUMN_INDEX if getattr(query, c) is not None]
    if len(given) < 2 or not d.index_hint("x"):
        return ""
    counts = []
    for column, value in given:
        alone = RequestQuery(**{column: value})
        rollup = PROMPTS if column == "prompt_name" else HOURLY
        parts = yield from rollup_sums(d, workspace, alone, rollup, ())
        counts.append((sum(s["requests"] for _, s in parts), column))
    return d.index_hint(_COLUMN_INDEX[min(counts)[1]])


def _capped_count(d: Dialect, f: _Filter, hint: str = "") -> Op[int]:
    """How many requests match, counting no further than CAP + 1; the index that finds the
    matches without reading other rows drives the count."""
    limit = f"LIMIT {CAP + 1}"
    source = f.text_source()
    if source is not None:
        # CROSS JOIN: SQLite reads the index first (PostgreSQL plans as it likes).
        driver = f"{source} CROSS JOIN requests r WHERE r.id = s.id AND {f.where(text=False)}"
    elif f.meta_key is not None:
        driver = f"{f.meta_source()} CROSS JOIN requests r WHERE r.id = s.id AND {f.where()}"
    else:
        driver = f"requests r {hint} WHERE {f.where()}"
    count = yield from fetchval(*f.bind(f"SELECT count(*) FROM (SELECT 1 FROM {driver} {limit}) c"))
    return int(count)


def count_matches(d: Dialect, workspace: int, query: RequestQuery) -> Op[tuple[int, bool]]:
    """How many requests match, and whether that is exact (else: more than CAP)."""
    if not _matchable(d, query):
        return 0, True
    rollup = rollup_for(query)
    if rollup is not None:
        parts = yield from rollup_sums(d, workspace, query, rollup, ())
        return sum(int(s["requests"]) for _, s in parts), True
    yield from d.plan_each_query()
    hint = yield from _narrowest(d, workspace, query)
    count = yield from _capped_count(d, _Filter(d, workspace, query), hint)
    return min(count, CAP + 1), count <= CAP


def stats_by_model(parts: Sequence[tuple[tuple[Any, ...], Sums]], *, source: str) -> LogStats:
    """``parts`` grouped by (model, status), as the page's totals."""
    by_model: dict[str, list[Sums]] = {}
    every: list[Sums] = []
    errors = 0
    for (model, status), sums in parts:
        by_model.setdefault(str(model), []).append(sums)
        every.append(sums)
        if status != "SUCCESS":
            errors += int(sums["requests"])
    total = _merge(every)
    usage = []
    for model, parts_of_model in by_model.items():
        merged = _merge(parts_of_model)
        usage.append(
            ModelUsage(
                model=model,
                requests=int(merged["requests"]),
                input_tokens=int(merged["input_tokens"]),
                output_tokens=int(merged["output_tokens"]),
                logged_price=merged["logged_price"],
                unpriced_input_tokens=int(merged["unpriced_input"]),
                unpriced_output_tokens=int(merged["unpriced_output"]),
            )
        )
    usage.sort(key=lambda u: (-u.requests, u.model))
    return stats_of(total, errors=errors, usage=usage, source=source)


def _merge(parts: Sequence[Sums]) -> Sums:
    return fold([s.values for s in parts], 0)


def stats_of(sums: Sums, *, errors: int, usage: list[ModelUsage], source: str) -> LogStats:
    requests = int(sums["requests"])
    return LogStats(
        requests=requests,
        exact=True,
        errors=errors,
        input_tokens=int(sums["input_tokens"]),
        output_tokens=int(sums["output_tokens"]),
        usage=usage,
        mean_latency=sums["latency_sum"] / requests if requests else None,
        max_latency=sums["latency_max"] if requests else None,
        p50=sums.percentile(0.50),
        p95=sums.percentile(0.95),
        p99=sums.percentile(0.99),
        mean_score=sums["score_sum"] / sums["scored"] if sums["scored"] else None,
        source=source,
    )


def request_stats(d: Dialect, workspace: int, query: RequestQuery) -> Op[LogStats]:
    """Count, errors, tokens, what to price, latency percentiles and mean score of the
    requests a filter matches; with more than CAP matches and no rollup to answer, only
    that there are more than CAP (``exact`` False)."""
    if not _matchable(d, query):
        return stats_by_model([], source="rollups")
    rollup = rollup_for(query)
    if rollup is not None:
        parts = yield from rollup_sums(d, workspace, query, rollup, ("model", "status"))
        return stats_by_model(parts, source="rollups")
    yield from d.plan_each_query()
    f = _Filter(d, workspace, query)
    count = yield from _capped_count(d, f, (yield from _narrowest(d, workspace, query)))
    if count > CAP:
        return LogStats(requests=CAP + 1, exact=False, source="count")
    rows = yield from fetch(*f.bind(raw_sums(d, f.where(mode="set"), ("model", "status"))))
    return stats_by_model([((row[0], row[1]), fold([row], 2)) for row in rows], source="rows")


# -- a page --------------------------------------------------------------------------------------


def _cost_key(f: _Filter, costs: Mapping[str, tuple[float, float]]) -> str:
    """SQL for a request's cost: its logged price, else its tokens priced per ``costs`` (per
    million tokens, by model), else -1 (no price: last)."""

    def per_token(price: float) -> str:
        return f"CAST({f.add(float(price) / 1_000_000)} AS DOUBLE PRECISION)"

    arms = [
        f"WHEN {f.add(model)} THEN r.input_tokens * {per_token(i)} "
        f"+ r.output_tokens * {per_token(o)}"
        for model, (i, o) in sorted(costs.items())
    ]
    estimated = f"CASE r.model {' '.join(arms)} ELSE -1 END" if arms else "-1"
    return f"(CASE WHEN r.price > 0 THEN r.price ELSE {estimated} END)"


def _keyset(f: _Filter, key: str, cursor: Cursor, *, forward: bool, descending: bool) -> str:
    """Rows after ``cursor`` in the listing's order (``forward``), or before it."""
    later = forward == descending  # moving towards smaller keys
    op = "<" if later else ">"
    return f"({key}, r.id) {op} ({f.add(cursor.key)}, {f.add(cursor.id)})"


def _order(key: str, *, ascending: bool) -> str:
    direction = "ASC" if ascending else "DESC"
    return f"ORDER BY {key} {direction}, r.id {direction}"


def request_page(
    d: Dialect,
    workspace: int,
    query: RequestQuery,
    page: PageRequest,
    *,
    costs: Mapping[str, tuple[float, float]],
    with_blueprints: bool = False,
) -> Op[RequestPage]:
    """One page of the requests a filter matches, in the order asked (see the module);
    ``with_blueprints`` adds each one's decoded ``prompt_blueprint``."""
    if not _matchable(d, query):
        return RequestPage(items=[], after=None, before=None, sort=page.sort)
    yield from d.plan_each_query()
    count, exact = yield from count_matches(d, workspace, query)
    few = exact and count <= CAP
    sort, notice = page.sort, None
    text_indexed = _Filter(d, workspace, query).text_source() is not None
    if not few and (sort == "cost" or (sort != "time" and text_indexed)):
        what = "cost" if sort == "cost" else f"{sort} with a text search"
        notice = (
            f"Sorting by {what} needs filters that match at most {CAP:,} requests; "
            "these match more, so the list is sorted by time. Narrow the filters to sort it."
        )
        sort = "time"
    f = _Filter(d, workspace, query)
    key = _cost_key(f, costs) if sort == "cost" else SORT_KEYS[sort]
    forward = page.before is None  # "before": the page in front of a row, read backwards
    cursor = page.after if forward else page.before
    ascending = page.descending != forward
    conditions = [] if cursor is None else [_keyset(f, key, cursor, forward=forward,
                                                    descending=page.descending)]  # fmt: skip
    limit = page.limit + 1
    narrowest = yield from _narrowest(d, workspace, query)
    if few:
        where = " AND ".join([f.where(mode="set"), *conditions])
        rows = yield from fetch(
            *f.bind(
                f"SELECT {_COLUMNS}, {key} FROM requests r WHERE r.id IN "
                f"(SELECT r.id FROM requests r {narrowest} WHERE {where}) "
                f"{_order(key, ascending=ascending)} LIMIT {limit}"
            )
        )
    elif text_indexed:
        rows = yield from _text_window_walk(d, f, key, conditions, ascending, limit)
    else:
        hint = d.index_hint(_SORT_INDEX[sort]) if sort in _SORT_INDEX else narrowest
        where = " AND ".join([f.where(), *conditions])
        rows = yield from fetch(
            *f.bind(
                f"SELECT {_COLUMNS}, {key} FROM requests r {hint} WHERE {where} "
                f"{_order(key, ascending=ascending)} LIMIT {limit}"
            )
        )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    if not forward:
        rows.reverse()
    items = [summary(row[:-1]) for row in rows]
    if with_blueprints and items:
        stored = yield from fetch(
            f"SELECT id, blueprint FROM {d.requests_with_payload} "
            f"WHERE id {d.any_of('$1', 'int8')}",
            d.array(item["id"] for item in items),
        )
        blueprints: dict[int, Any] = {row[0]: row[1] for row in stored}
        for item in items:
            item["prompt_blueprint"] = _stored_json(blueprints.get(item["id"]))
    edges = [Cursor(row[-1], row[0]) for row in (rows[:1] + rows[-1:])] if rows else []
    after = edges[-1] if rows and (more if forward else True) else None
    before = edges[0] if rows and (cursor is not None if forward else more) else None
    return RequestPage(
        items=items,
        after=after,
        before=before,
        sort=sort,
        notice=notice,
        total=count,
        total_exact=exact,
    )


def _text_window_walk(
    d: Dialect,
    f: _Filter,
    key: str,
    conditions: list[str],
    ascending: bool,
    limit: int,
) -> Op[list[Any]]:
    """Many text matches, from an index that is not the row's (SQLite): walk the time index
    a window at a time and ask the text index which of the window's ids match (a window of
    time is a narrow window of ids: ids grow with time)."""
    assert f.phrase is not None and f.pattern is not None
    found: list[Any] = []
    base = f.where(text=False)
    keyset = list(conditions)
    op = ">" if ascending else "<"
    low, high = f.add(None), f.add(None)  # placeholders, filled per window below
    window_text = d.text_window(f.phrase, f.pattern, low, high)
    for _ in range(_WINDOWS):
        window = yield from fetch(
            *f.bind(
                f"SELECT {_COLUMNS}, {key} FROM requests r WHERE {' AND '.join([base, *keyset])} "
                f"{_order(key, ascending=ascending)} LIMIT {_WINDOW}"
            )
        )
        if not window:
            break
        ids = [row[0] for row in window]
        f.args[int(low[1:]) - 1], f.args[int(high[1:]) - 1] = min(ids), max(ids)
        hits = {row[0] for row in (yield from fetch(*f.bind(window_text)))}
        found += [row for row in window if row[0] in hits]
        if len(found) >= limit or len(window) < _WINDOW:
            break
        last = window[-1]
        keyset = [f"({key}, r.id) {op} ({f.add(last[-1])}, {f.add(last[0])})"]
    return found[:limit]


def list_requests(
    d: Dialect, workspace: int, *, limit: int, offset: int, prompt_name: str | None
) -> Op[tuple[list[dict[str, Any]], int]]:
    """Newest logged first, each a summary (no body or blueprint), and how many there are
    (from the rollups: no count of the log)."""
    where = "workspace_id = $1"
    args: tuple[Any, ...] = (workspace,)
    if prompt_name is not None:
        if not d.text_ok(prompt_name):
            return [], 0
        where += " AND prompt_name = $2"
        args += (prompt_name,)
    total, _ = yield from count_matches(d, workspace, RequestQuery(prompt_name=prompt_name))
    n = len(args)
    rows = yield from fetch(
        f"SELECT {', '.join(SUMMARY_NAMES)} FROM requests WHERE {where} "
        f"ORDER BY id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return [summary(row) for row in rows], total
