"""The dashboard's reads beside the request list: time series, usage by model, per-prompt
metrics, the filter menus, and the price table.

Series, usage and prompt metrics add up rollups (``queries/rollups.py``), reading the log
itself only for slots narrower than an hour and for the partial buckets at a range's ends.
"""

from __future__ import annotations

import math
from typing import Any

from promptrun.server.store.base import (
    Bucket,
    ModelPrice,
    ModelUsage,
    PromptMetrics,
    RequestQuery,
)
from promptrun.server.store.queries._sql import Op, execute, fetch
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.log_filter import rollup_sums
from promptrun.server.store.queries.log_search import stats_by_model
from promptrun.server.store.queries.rollups import BY_MODEL, BY_PROMPT, Sums, fold

__all__ = [
    "delete_model_price",
    "model_prices",
    "prompt_metrics",
    "request_facets",
    "request_series",
    "set_model_price",
    "usage_by_model",
]

FACET_LIMIT = 500
FACET_KINDS = ("prompts", "providers", "models", "statuses", "tags")
_DAY = 86400
_TOP_PROMPTS = 100


def request_series(
    d: Dialect, workspace: int, *, since: float, until: float, bucket: float
) -> Op[list[Bucket]]:
    """Every bucket from ``since`` to ``until`` (empty ones as zeros), oldest first."""
    parts = yield from rollup_sums(
        d,
        workspace,
        RequestQuery(since=since, until=until),
        BY_MODEL,
        ("status",),
        slots=(since, bucket),
    )
    by_slot: dict[int, list[tuple[Any, Sums]]] = {}
    for (slot, status), sums in parts:
        by_slot.setdefault(int(slot), []).append((status, sums))
    count = max(1, int((until - since + bucket - 1e-9) // bucket))
    series: list[Bucket] = []
    for slot in range(count):
        start = since + slot * bucket
        found = by_slot.get(slot)
        if not found:
            series.append(Bucket(start, 0, 0, 0.0, 0.0))
            continue
        sums = fold([s.values for _, s in found], 0)
        requests = int(sums["requests"])
        errors = sum(int(s["requests"]) for status, s in found if status != "SUCCESS")
        series.append(
            Bucket(
                start,
                requests,
                errors,
                sums["latency_sum"] / requests if requests else 0.0,
                sums["latency_max"],
                sums.percentile(0.50),
                sums.percentile(0.95),
                sums.percentile(0.99),
            )
        )
    return series


def usage_by_model(
    d: Dialect, workspace: int, *, since: float | None, until: float | None
) -> Op[list[ModelUsage]]:
    """Per model: requests, tokens, and what was logged with and without a price."""
    parts = yield from rollup_sums(
        d, workspace, RequestQuery(since=since, until=until), BY_MODEL, ("model", "status")
    )
    return stats_by_model(parts, source="rollups").usage


def prompt_metrics(
    d: Dialect, workspace: int, *, since: float, until: float | None, prompt_name: str | None
) -> Op[list[PromptMetrics]]:
    """Per prompt version (of ``prompt_name``, or of every prompt), from the UTC day of
    ``since`` to ``until`` (None: now), most requests first (the hundred busiest)."""
    if not d.text_ok(prompt_name):
        return []
    day = math.floor(since / _DAY) * _DAY
    parts = yield from rollup_sums(
        d,
        workspace,
        RequestQuery(since=day, until=until, prompt_name=prompt_name),
        BY_PROMPT,
        ("prompt_name", "prompt_version", "model", "status"),
    )
    by_version: dict[tuple[str, int], list[tuple[tuple[Any, ...], Sums]]] = {}
    for (name, version, model, status), sums in parts:
        if name:
            by_version.setdefault((str(name), int(version)), []).append(((model, status), sums))
    found = [
        PromptMetrics(
            prompt_name=name, version=version, stats=stats_by_model(rows, source="rollups")
        )
        for (name, version), rows in by_version.items()
    ]
    found.sort(key=lambda m: (-m.stats.requests, m.prompt_name, -m.version))
    return found[:_TOP_PROMPTS]


def request_facets(d: Dialect, workspace: int) -> Op[dict[str, list[str]]]:
    """The values seen in the log, for filter menus: prompts, providers, models, statuses, tags
    (kept as requests are stored; at most FACET_LIMIT of each)."""
    rows = yield from fetch(
        "SELECT kind, value FROM (SELECT kind, value, row_number() OVER "
        f"(PARTITION BY kind ORDER BY value{d.binary}) AS n "
        "FROM request_facets WHERE workspace_id = $1) f "
        f"WHERE n <= $2 ORDER BY kind, value{d.binary}",
        workspace,
        FACET_LIMIT,
    )
    facets: dict[str, list[str]] = {kind: [] for kind in FACET_KINDS}
    for kind, value in rows:
        facets.setdefault(kind, []).append(value)
    return facets


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
