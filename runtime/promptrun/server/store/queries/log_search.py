"""The request log as the dashboard reads it at millions of rows.

- How many requests a filter matches: exact from the rollups when the filter is made of what
  they are keyed by (time, provider, model, status, prompt and version, or tag), else counted
  up to the filter's cap: ``CAP``, or ``TEXT_CAP`` with a text search (a page then says
  "10,000+" or "1,000+"). Pages still walk every match.
- Totals and latency percentiles of the matches: from the rollups, or from the matching rows
  when there are at most the cap of them.
- A page of matches sorted by time, latency, tokens or cost, with keyset pagination: a page
  continues from the sort key and id of the row before it, so the thousandth page costs what
  the first does. Few matches (at most the cap): they are gathered through the narrowest
  filter's own index and sorted. Many: the sort key's index is walked and each row tested,
  which finds a page after a few hundred rows at most. Cost is priced at read time from the
  workspace's price table, so no index can walk it: sorting by cost needs a filter matching
  at most its cap of requests (otherwise the page is sorted by time and says why); so does
  sorting a text search by latency or tokens where the text index is not the row's own
  (SQLite), which a window of the time index at a time asks instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from promptrun.server.store.base import (
    Cursor,
    LogStats,
    ModelUsage,
    NotFoundError,
    PageRequest,
    RequestPage,
    RequestQuery,
)
from promptrun.server.store.queries._sql import Op, fetch
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.log_filter import (
    CAP,
    TEXT_CAP,
    Filter,
    capped_count,
    column_hint,
    driver,
    matchable,
    narrowest,
    rollup_sums,
    rollups_for,
)
from promptrun.server.store.queries.requests import SUMMARY_COLUMNS, SUMMARY_NAMES, summary
from promptrun.server.store.queries.rollups import Sums, fold, raw_sums
from promptrun.server.store.queries.stored_json import stored_json

__all__ = [
    "CAP",
    "TEXT_CAP",
    "count_matches",
    "list_requests",
    "request_page",
    "request_stats",
    "stats_by_model",
]

_WINDOW = 2_000  # rows of the time index a text search reads at a time (SQLite, many matches)
_WINDOWS = 50  # then it returns what it found, with a cursor to go on from
SORT_KEYS = {
    "time": "r.start_time",
    "latency": "(r.end_time - r.start_time)",
    "tokens": "(r.input_tokens + r.output_tokens)",
}
_SORT_INDEX = {"latency": "requests_latency", "tokens": "requests_tokens"}
_KEY_TYPES = {"time": float, "latency": float, "cost": float, "tokens": int}
_COLUMNS = ", ".join(f"r.{name}" for name in SUMMARY_NAMES)


def count_matches(d: Dialect, workspace: int, query: RequestQuery) -> Op[tuple[int, bool]]:
    """How many requests match, and whether that is exact (else: more than the filter's cap,
    and the count is the cap + 1)."""
    if not matchable(d, query):
        return 0, True
    rollups = rollups_for(query)
    if rollups is not None:
        parts = yield from rollup_sums(d, workspace, query, rollups, ())
        return sum(int(s["requests"]) for _, s in parts), True
    yield from d.plan_each_query()
    sets = yield from narrowest(d, workspace, query)
    hint = "" if sets else (yield from column_hint(d, workspace, query))
    f = Filter(d, workspace, query)
    count = yield from capped_count(d, f, sets, hint)
    return min(count, f.cap + 1), count <= f.cap


def _merge(parts: Sequence[Sums]) -> Sums:
    return fold([s.values for s in parts], 0)


def stats_by_model(parts: Sequence[tuple[tuple[Any, ...], Sums]], *, source: str) -> LogStats:
    """Sums grouped by (model, status), as totals with the usage per model."""
    by_model: dict[str, list[Sums]] = {}
    errors = 0
    for (model, status), sums in parts:
        by_model.setdefault(str(model), []).append(sums)
        if status != "SUCCESS":
            errors += int(sums["requests"])
    usage = []
    for model, of_model in by_model.items():
        merged = _merge(of_model)
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
    total = _merge([sums for _, sums in parts])
    requests = int(total["requests"])
    return LogStats(
        requests=requests,
        errors=errors,
        input_tokens=int(total["input_tokens"]),
        output_tokens=int(total["output_tokens"]),
        usage=usage,
        mean_latency=total["latency_sum"] / requests if requests else None,
        max_latency=total["latency_max"] if requests else None,
        p50=total.percentile(0.50),
        p95=total.percentile(0.95),
        p99=total.percentile(0.99),
        mean_score=total["score_sum"] / total["scored"] if total["scored"] else None,
        source=source,
    )


def request_stats(d: Dialect, workspace: int, query: RequestQuery) -> Op[LogStats]:
    """Count, errors, tokens, what to price, latency percentiles and mean score of the
    requests a filter matches; with more than the filter's cap of matches and no rollup to
    answer, only that there are more (``exact`` False, ``requests`` the cap + 1)."""
    if not matchable(d, query):
        return stats_by_model([], source="rollups")
    rollups = rollups_for(query)
    if rollups is not None:
        parts = yield from rollup_sums(d, workspace, query, rollups, ("model", "status"))
        return stats_by_model(parts, source="rollups")
    yield from d.plan_each_query()
    sets = yield from narrowest(d, workspace, query)
    hint = "" if sets else (yield from column_hint(d, workspace, query))
    f = Filter(d, workspace, query)
    source, where = driver(f, sets, hint)
    # One read of at most cap + 1 matches: the sums, and whether there were more.
    sums = raw_sums(d, where, ("model", "status"), source=source, limit=f.cap + 1)
    rows = yield from fetch(*f.bind(sums))
    parts = [((row[0], row[1]), fold([row], 2)) for row in rows]
    if sum(int(p["requests"]) for _, p in parts) > f.cap:
        return LogStats(requests=f.cap + 1, exact=False, source="count")
    return stats_by_model(parts, source="rows")


# -- a page --------------------------------------------------------------------------------------


def _cost_key(f: Filter, costs: Mapping[str, tuple[float, float]]) -> str:
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


def _order(key: str, *, ascending: bool) -> str:
    direction = "ASC" if ascending else "DESC"
    return f"ORDER BY {key} {direction}, r.id {direction}"


def _after(f: Filter, key: str, cursor: Cursor, *, ascending: bool) -> str:
    """Rows after ``cursor`` in the order being read."""
    return f"({key}, r.id) {'>' if ascending else '<'} ({f.add(cursor.key)}, {f.add(cursor.id)})"


def _typed(d: Dialect, sort: str, cursor: Cursor | None) -> Cursor | None:
    """The cursor with its key as the sort key's type where columns have one (PostgreSQL);
    a key that is not one is no position of this list (a forged or garbled address)."""
    if cursor is None or not d.typed:
        return cursor
    key, kind = cursor.key, _KEY_TYPES[sort]
    number = isinstance(key, int | float) and not isinstance(key, bool)
    if not number or (kind is int and not float(key).is_integer()):
        raise NotFoundError("no such page of this list; start again from its first page")
    return Cursor(kind(key), cursor.id)


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
    if not matchable(d, query):
        return RequestPage(items=[], after=None, before=None, sort=page.sort)
    yield from d.plan_each_query()
    sets = yield from narrowest(d, workspace, query)
    hint = "" if sets else (yield from column_hint(d, workspace, query))
    f = Filter(d, workspace, query)
    sort = page.sort
    key = _cost_key(f, costs) if sort == "cost" else SORT_KEYS[sort]
    forward = page.before is None  # "before": the page in front of a row, read backwards
    ascending = page.descending != forward
    gathered: list[Any] | None = None  # the page's ids, when read with the count
    in_order = False  # whether the count read the list's first matches (so holds its start)
    if rollups_for(query) is not None or f.text_set() is not None:
        # Counted apart: by the rollups, or through a text index that is not the row's own
        # (SQLite), where many matches are usual and counting them costs less than sorting.
        count, exact = yield from count_matches(d, workspace, query)
    else:
        # No rollup counts these: one read of at most cap + 1 matches counts them and, when
        # that is all of them, picks the page among them in the order asked. A text search
        # read forwards (by time, latency or tokens) reads the list's first cap + 1 matches
        # in the list's order (a common word's from the sort key's index at once, a rare
        # word's from the text index and a sort): a page among them is the page, many
        # matches or few, where walking an index for a rare word's page read far.
        cursor = _typed(d, sort, page.after if forward else page.before)
        past = "1 = 1" if cursor is None else _after(f, key, cursor, ascending=ascending)
        source, where = driver(f, sets, hint)
        direction = "ASC" if ascending else "DESC"
        in_order = f.text is not None and sort != "cost" and forward
        ordered = f"{_order(key, ascending=ascending)} " if in_order else ""
        read = yield from fetch(
            *f.bind(
                "SELECT w.id, w.n, w.ok FROM (SELECT m.id, m.k, m.ok, count(*) OVER () AS n "
                f"FROM (SELECT r.id, {key} AS k, {past} AS ok FROM {source} WHERE {where} "
                f"{ordered}LIMIT {f.cap + 1}) m) w "
                f"ORDER BY CASE WHEN w.ok THEN 0 ELSE 1 END, w.k {direction}, w.id {direction} "
                f"LIMIT {page.limit + 1}"
            )
        )
        # Rows after the cursor first (a NULL test is not one): the count is read even when
        # none are.
        count = int(read[0][1]) if read else 0
        gathered = [row[0] for row in read if row[2]]
        count, exact = min(count, f.cap + 1), count <= f.cap
    few = exact and count <= f.cap
    notice = None
    text_indexed = f.text_set() is not None
    if not few and (sort == "cost" or (sort != "time" and text_indexed)):
        what = "cost" if sort == "cost" else f"{sort} with a text search"
        notice = (
            f"Sorting by {what} needs filters that match at most {f.cap:,} requests; "
            "these match more, so the list is sorted by time. Narrow the filters to sort it."
        )
        sort, key = "time", SORT_KEYS["time"]
    cursor = _typed(d, sort, page.after if forward else page.before)
    keyset = [] if cursor is None else [_after(f, key, cursor, ascending=ascending)]
    limit = page.limit + 1
    if gathered is not None and (few or (in_order and len(gathered) > page.limit)):
        rows = yield from _rows_of(d, f, gathered, key)
    elif few and not (sort == "time" and not sets):
        # Newest first through columns only is walked below: the narrowest column's index is
        # in time order, which finds a page sooner than gathering every match.
        where = " AND ".join([f.where(sets=sets), *keyset])
        rows = yield from fetch(
            *f.bind(
                f"SELECT {_COLUMNS}, {key} FROM requests r WHERE r.id IN "
                f"(SELECT r.id FROM requests r {hint} WHERE {where}) "
                f"{_order(key, ascending=ascending)} LIMIT {limit}"
            )
        )
    elif text_indexed and not few:
        rows = yield from _text_window_walk(d, f, key, keyset, ascending, limit)
    else:
        if sort in _SORT_INDEX:
            hint = d.index_hint(_SORT_INDEX[sort])
        where = " AND ".join([f.where(), *keyset])
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
        yield from _add_blueprints(d, items)
    first = Cursor(rows[0][-1], rows[0][0]) if rows else None
    last = Cursor(rows[-1][-1], rows[-1][0]) if rows else None
    return RequestPage(
        items=items,
        after=last if (more if forward else rows) else None,
        before=first if (cursor is not None if forward else more) else None,
        sort=sort,
        notice=notice,
        total=count,
        total_exact=exact,
    )


def _rows_of(d: Dialect, f: Filter, ids: list[int], key: str) -> Op[list[Any]]:
    """The summaries (and sort key: ``f``'s parameters) of these requests, in this order."""
    if not ids:
        return []
    listed = f.add(d.array(ids))
    found = yield from fetch(
        *f.bind(f"SELECT {_COLUMNS}, {key} FROM requests r WHERE r.id {d.any_of(listed, 'int8')}")
    )
    order = {request_id: n for n, request_id in enumerate(ids)}
    return sorted(found, key=lambda row: order[row[0]])


def _add_blueprints(d: Dialect, items: list[dict[str, Any]]) -> Op[None]:
    stored = yield from fetch(
        f"SELECT id, blueprint FROM {d.requests_with_payload} WHERE id {d.any_of('$1', 'int8')}",
        d.array(item["id"] for item in items),
    )
    blueprints: dict[int, Any] = {row[0]: row[1] for row in stored}
    for item in items:
        item["prompt_blueprint"] = stored_json(blueprints.get(item["id"]))


def _text_window_walk(
    d: Dialect, f: Filter, key: str, keyset: list[str], ascending: bool, limit: int
) -> Op[list[Any]]:
    """Many text matches, from an index that is not the row's (SQLite): walk the time index
    a window at a time and ask the text index which of the window's ids match (a window of
    time is a narrow window of ids: ids grow with time)."""
    assert f.phrase is not None and f.pattern is not None
    found: list[Any] = []
    base = f.where(text=False)
    low, high = f.add(None), f.add(None)  # filled per window below
    window_text = d.text_window(f.phrase, f.pattern, low, high)
    for _ in range(_WINDOWS):
        window = yield from fetch(
            *f.bind(
                f"SELECT r.id, {key} FROM requests r WHERE {' AND '.join([base, *keyset])} "
                f"{_order(key, ascending=ascending)} LIMIT {_WINDOW}"
            )
        )
        if not window:
            break
        ids = [row[0] for row in window]
        f.args[int(low[1:]) - 1], f.args[int(high[1:]) - 1] = min(ids), max(ids)
        hits = {row[0] for row in (yield from fetch(*f.bind(window_text)))}
        found += [row[0] for row in window if row[0] in hits]
        if len(found) >= limit or len(window) < _WINDOW:
            break
        keyset = [_after(f, key, Cursor(window[-1][1], window[-1][0]), ascending=ascending)]
    return (yield from _rows_of(d, f, found[:limit], key))


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
        f"SELECT {SUMMARY_COLUMNS} FROM requests WHERE {where} "
        f"ORDER BY id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return [summary(row) for row in rows], total
