"""The dashboard's reads: filtered request search, time series, usage by model, the price table.

Every filter adds its own condition (none for "any"), so each statement names only the
columns it filters on and the planner can use the index led by the workspace and that column.
"""

from __future__ import annotations

import math
from typing import Any

from promptrun.server.store.base import Bucket, ModelPrice, ModelUsage, RequestQuery
from promptrun.server.store.queries._sql import Op, execute, fetch, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.requests import SUMMARY_COLUMNS, summary

__all__ = [
    "delete_model_price",
    "model_prices",
    "request_facets",
    "request_series",
    "search_requests",
    "set_model_price",
    "usage_by_model",
]

FACET_LIMIT = 500


def _where(d: Dialect, workspace: int, query: RequestQuery) -> tuple[str, list[Any]]:
    """The conditions for ``query`` and their parameters (``_matchable`` said it can match)."""
    args: list[Any] = [workspace]
    clauses = ["workspace_id = $1"]
    for column, value in (
        ("prompt_name", query.prompt_name),
        ("prompt_version", query.prompt_version),
        ("provider", query.provider),
        ("model", query.model),
        ("status", query.status),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if query.tag is not None:
        args.append(query.tag)
        clauses.append(d.tag_filter(f"${len(args)}"))
    if query.since is not None:
        args.append(query.since)
        clauses.append(f"start_time >= ${len(args)}")
    if query.until is not None:
        args.append(query.until)
        clauses.append(f"start_time < ${len(args)}")
    if query.text:
        args.append(d.text_pattern(query.text))
        clauses.append(d.text_filter(f"${len(args)}"))
    return " AND ".join(clauses), args


def _matchable(d: Dialect, query: RequestQuery) -> bool:
    """False when a filter holds text the database cannot hold, so nothing can match."""
    return d.text_ok(
        query.prompt_name, query.tag, query.provider, query.model, query.status, query.text
    )


def search_requests(
    d: Dialect, workspace: int, query: RequestQuery, *, limit: int, offset: int
) -> Op[tuple[list[dict[str, Any]], int]]:
    """Newest first, summaries as ``list_requests`` gives them, and the total matching."""
    if not _matchable(d, query):
        return [], 0
    where, args = _where(d, workspace, query)
    yield from d.plan_each_query()
    total = yield from fetchval(f"SELECT COUNT(*) FROM requests WHERE {where}", *args)
    page = f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    rows = yield from fetch(
        f"SELECT {SUMMARY_COLUMNS} FROM requests WHERE {where} ORDER BY id DESC {page}",
        *args,
        limit,
        offset,
    )
    return [summary(row) for row in rows], int(total)


def request_facets(d: Dialect, workspace: int) -> Op[dict[str, list[str]]]:
    """The values seen in the log, for filter menus: prompts, providers, models, statuses, tags."""
    return (yield from d.request_facets(workspace, FACET_LIMIT))


def _real(value: Any) -> float:
    """An aggregate as a float: SQL NULL (no row, or only NaN arithmetic) is 0."""
    return 0.0 if value is None else float(value)


def _whole(value: Any) -> int:
    """A float total as an int; an infinite one (rows written around the server) is 0."""
    number = _real(value)
    return int(number) if math.isfinite(number) else 0


_LATENCY = "CASE WHEN end_time > start_time THEN end_time - start_time ELSE 0 END"


def request_series(
    d: Dialect, workspace: int, *, since: float, until: float, bucket: float
) -> Op[list[Bucket]]:
    """Every bucket from ``since`` to ``until`` (empty ones as zeros), oldest first."""
    rows = yield from fetch(
        f"SELECT {d.floor_int('(start_time - $1) / $2')} AS slot, COUNT(*), "
        "SUM(CASE WHEN status <> 'SUCCESS' THEN 1 ELSE 0 END), "
        f"AVG({_LATENCY}), MAX({_LATENCY}) FROM requests "
        "WHERE workspace_id = $3 AND start_time >= $1 AND start_time < $4 GROUP BY slot",
        since,
        bucket,
        workspace,
        until,
    )
    found = {int(row[0]): row for row in rows}
    count = max(1, int((until - since + bucket - 1e-9) // bucket))
    series: list[Bucket] = []
    for slot in range(count):
        row = found.get(slot)
        start = since + slot * bucket
        if row is None:
            series.append(Bucket(start, 0, 0, 0.0, 0.0))
        else:
            series.append(Bucket(start, int(row[1]), int(row[2]), _real(row[3]), _real(row[4])))
    return series


def usage_by_model(
    d: Dialect, workspace: int, *, since: float | None, until: float | None
) -> Op[list[ModelUsage]]:
    """Per model: requests, tokens, and what was logged with and without a price."""
    where, args = _where(d, workspace, RequestQuery(since=since, until=until))
    yield from d.plan_each_query()
    rows = yield from fetch(
        # A float total (d.total): never "integer overflow", whatever a row holds.
        f"SELECT model, COUNT(*), {d.total('input_tokens')}, {d.total('output_tokens')}, "
        f"{d.total('CASE WHEN price > 0 THEN price ELSE 0 END')}, "
        f"{d.total('CASE WHEN price > 0 THEN 0 ELSE input_tokens END')}, "
        f"{d.total('CASE WHEN price > 0 THEN 0 ELSE output_tokens END')} "
        f"FROM requests WHERE {where} GROUP BY model ORDER BY COUNT(*) DESC, model{d.binary}",
        *args,
    )
    return [
        ModelUsage(
            model=str(r[0]),
            requests=int(r[1]),
            input_tokens=_whole(r[2]),
            output_tokens=_whole(r[3]),
            logged_price=_real(r[4]),
            unpriced_input_tokens=_whole(r[5]),
            unpriced_output_tokens=_whole(r[6]),
        )
        for r in rows
    ]


def model_prices(d: Dialect, workspace: int) -> Op[list[ModelPrice]]:
    rows = yield from fetch(
        "SELECT model, input_per_million, output_per_million FROM model_prices "
        f"WHERE workspace_id = $1 ORDER BY model{d.binary}",
        workspace,
    )
    return [ModelPrice(str(r[0]), float(r[1]), float(r[2])) for r in rows]


def set_model_price(d: Dialect, workspace: int, price: ModelPrice, now: float) -> Op[None]:
    d.check_text(price.model)
    yield from execute(
        "INSERT INTO model_prices "
        "(workspace_id, model, input_per_million, output_per_million, updated_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, model) DO UPDATE SET "
        "input_per_million = excluded.input_per_million, "
        "output_per_million = excluded.output_per_million, updated_at = excluded.updated_at",
        workspace,
        price.model,
        price.input_per_million,
        price.output_per_million,
        now,
    )


def delete_model_price(d: Dialect, workspace: int, model: str) -> Op[None]:
    if d.text_ok(model):
        yield from execute(
            "DELETE FROM model_prices WHERE workspace_id = $1 AND model = $2", workspace, model
        )
