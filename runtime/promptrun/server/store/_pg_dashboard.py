"""The dashboard's queries on PostgreSQL: filtered request search, time series, usage, prices.

The answers of :mod:`promptrun.server.store._dashboard`, with PostgreSQL's ways of keeping them
fast at millions of logged requests: every filter has an index led by the workspace (and
ending in the id, so "newest first" pages read few rows), the tag filter is a JSONB
containment that a GIN index answers, text search is ``ILIKE`` on the conversation's text
(``requests.search_text``) with a trigram GIN index, and the filter menus read
``request_facets`` instead of scanning the log.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from promptrun.server.store._dashboard import (
    Bucket,
    ModelPrice,
    ModelUsage,
    RequestQuery,
    TemplateDetail,
    TemplateSummary,
    VersionInfo,
)
from promptrun.server.store._pg_db import Conn
from promptrun.server.store._pg_requests import check_text, summaries
from promptrun.server.store._requests import _SUMMARY_COLUMNS
from promptrun.server.store.base import NotFoundError

if TYPE_CHECKING:
    from promptrun.server.store.postgres import PostgresStore

__all__ = ["PostgresDashboard"]

_FACET_KINDS = ("prompts", "providers", "models", "statuses", "tags")
_FACET_LIMIT = 500


def _ilike_pattern(text: str) -> str:
    # A substring of the conversation's text, ignoring case as SQLite's LIKE does.
    spelled = text
    for char in ("\\", "%", "_"):
        spelled = spelled.replace(char, "\\" + char)
    return f"%{spelled}%"


# Every filter in one statement: a filter given as NULL matches everything. Each query runs
# with a custom plan (``_custom_plans``), so the planner drops the NULL ones and picks the
# index of the ones given.
_WHERE = (
    "workspace_id = $1 AND ($2::text IS NULL OR prompt_name = $2) "
    "AND ($3::int8 IS NULL OR prompt_version = $3) "
    "AND ($4::text IS NULL OR tags @> jsonb_build_array($4::text)) "
    "AND ($5::text IS NULL OR provider = $5) AND ($6::text IS NULL OR model = $6) "
    "AND ($7::text IS NULL OR status = $7) AND ($8::float8 IS NULL OR start_time >= $8) "
    "AND ($9::float8 IS NULL OR start_time < $9) AND ($10::text IS NULL OR search_text ILIKE $10)"
)


def _where_args(workspace: int, query: RequestQuery) -> list[Any] | None:
    """The arguments of ``_WHERE``; None when nothing can match (a NUL in a filter)."""
    texts = (query.prompt_name, query.tag, query.provider, query.model, query.status, query.text)
    if any(text is not None and "\x00" in text for text in texts):
        return None
    return [
        workspace, query.prompt_name, query.prompt_version, query.tag, query.provider,
        query.model, query.status, query.since, query.until,
        _ilike_pattern(query.text) if query.text else None,
    ]  # fmt: skip


async def _custom_plans(conn: Conn) -> None:
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def search_requests(
    conn: Conn, workspace: int, query: RequestQuery, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, summaries as ``list_requests`` gives them, and the total matching."""
    args = _where_args(workspace, query)
    if args is None:
        return [], 0
    await _custom_plans(conn)
    total = await conn.fetchval(f"SELECT COUNT(*) FROM requests WHERE {_WHERE}", *args)
    records = await conn.fetch(
        f"SELECT {_SUMMARY_COLUMNS} FROM requests WHERE {_WHERE} "
        "ORDER BY id DESC LIMIT $11 OFFSET $12",
        *args,
        limit,
        offset,
    )
    return summaries(records), int(total)


async def request_facets(conn: Conn, workspace: int) -> dict[str, list[str]]:
    """The values seen in the log, for filter menus: prompts, providers, models, statuses, tags."""
    rows = await conn.fetch(
        "SELECT kind, value FROM (SELECT kind, value, row_number() OVER "
        '(PARTITION BY kind ORDER BY value COLLATE "C") AS n '
        "FROM request_facets WHERE workspace_id = $1) AS f "
        'WHERE n <= $2 ORDER BY kind, value COLLATE "C"',
        workspace,
        _FACET_LIMIT,
    )
    facets: dict[str, list[str]] = {kind: [] for kind in _FACET_KINDS}
    for kind, value in rows:
        facets.setdefault(kind, []).append(value)
    return facets


async def request_series(
    conn: Conn, workspace: int, *, since: float, until: float, bucket: float
) -> list[Bucket]:
    """Every bucket from ``since`` to ``until`` (empty ones as zeros), oldest first."""
    rows = await conn.fetch(
        "SELECT floor((start_time - $1) / $2)::int8 AS slot, COUNT(*), "
        "COUNT(*) FILTER (WHERE status <> 'SUCCESS'), "
        "AVG(GREATEST(end_time - start_time, 0)), MAX(GREATEST(end_time - start_time, 0)) "
        "FROM requests WHERE workspace_id = $3 AND start_time >= $1 AND start_time < $4 "
        "GROUP BY slot",
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
            series.append(Bucket(start, int(row[1]), int(row[2]), float(row[3]), float(row[4])))
    return series


async def usage_by_model(
    conn: Conn, workspace: int, *, since: float | None, until: float | None
) -> list[ModelUsage]:
    """Per model: requests, tokens, and what was logged with and without a price."""
    args = _where_args(workspace, RequestQuery(since=since, until=until))
    assert args is not None
    await _custom_plans(conn)
    rows = await conn.fetch(
        "SELECT model, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
        "SUM(CASE WHEN price > 0 THEN price ELSE 0 END), "
        "SUM(CASE WHEN price > 0 THEN 0 ELSE input_tokens END), "
        "SUM(CASE WHEN price > 0 THEN 0 ELSE output_tokens END) "
        f'FROM requests WHERE {_WHERE} GROUP BY model ORDER BY COUNT(*) DESC, model COLLATE "C"',
        *args,
    )
    return [
        ModelUsage(
            model=str(r[0]),
            requests=int(r[1]),
            input_tokens=int(r[2]),
            output_tokens=int(r[3]),
            logged_price=float(r[4]),
            unpriced_input_tokens=int(r[5]),
            unpriced_output_tokens=int(r[6]),
        )
        for r in rows
    ]


async def template_summaries(
    conn: Conn, workspace: int, *, limit: int, offset: int
) -> tuple[list[TemplateSummary], int]:
    """Templates by name, each with its latest version number, version count and labels."""
    total = await conn.fetchval(
        "SELECT COUNT(*) FROM prompt_templates WHERE workspace_id = $1", workspace
    )
    rows = await conn.fetch(
        "SELECT t.id, t.name, t.tags, MAX(v.number), COUNT(v.id), MAX(v.created_at), "
        '(SELECT array_agg(l.label ORDER BY l.label COLLATE "C") FROM release_labels l '
        "WHERE l.template_id = t.id) "
        "FROM prompt_templates t JOIN prompt_versions v ON v.template_id = t.id "
        'WHERE t.workspace_id = $1 GROUP BY t.id ORDER BY t.name COLLATE "C" '
        "LIMIT $2 OFFSET $3",
        workspace,
        limit,
        offset,
    )
    return [
        TemplateSummary(
            name=name,
            latest_version=int(latest),
            versions=int(versions),
            labels=list(labels or []),
            tags=msgspec.json.decode(tags),
            updated_at=float(updated),
        )
        for _, name, tags, latest, versions, updated, labels in rows
    ], int(total)


async def template_detail(conn: Conn, workspace: int, name: str) -> TemplateDetail:
    """A template's versions, newest first, each with its commit message and labels."""
    found = None
    if "\x00" not in name:
        found = await conn.fetchrow(
            "SELECT id, tags, created_at FROM prompt_templates "
            "WHERE workspace_id = $1 AND name = $2",
            workspace,
            name,
        )
    if found is None:
        raise NotFoundError(f"prompt template {name!r} not found in this workspace")
    template_id, tags, created_at = found
    labels: dict[int, list[str]] = {}
    for label, version_id in await conn.fetch(
        "SELECT label, version_id FROM release_labels WHERE template_id = $1 "
        'ORDER BY label COLLATE "C"',
        template_id,
    ):
        labels.setdefault(version_id, []).append(label)
    versions = [
        VersionInfo(
            number=number,
            commit_message=message,
            created_at=created,
            labels=labels.get(version_id, []),
        )
        for version_id, number, message, created in await conn.fetch(
            "SELECT id, number, commit_message, created_at FROM prompt_versions "
            "WHERE template_id = $1 ORDER BY number DESC",
            template_id,
        )
    ]
    return TemplateDetail(
        template_id=template_id,
        name=name,
        tags=msgspec.json.decode(tags),
        created_at=created_at,
        versions=versions,
    )


class PostgresDashboard:
    """The dashboard's queries on a :class:`~promptrun.server.store.postgres.PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def search_requests(
        self, workspace: int, query: RequestQuery, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._store.read(
            lambda conn: search_requests(conn, workspace, query, limit=limit, offset=offset)
        )

    async def request_facets(self, workspace: int) -> dict[str, list[str]]:
        return await self._store.read(lambda conn: request_facets(conn, workspace))

    async def request_series(
        self, workspace: int, *, since: float, until: float, bucket: float
    ) -> list[Bucket]:
        return await self._store.read(
            lambda conn: request_series(conn, workspace, since=since, until=until, bucket=bucket)
        )

    async def usage_by_model(
        self, workspace: int, *, since: float | None = None, until: float | None = None
    ) -> list[ModelUsage]:
        return await self._store.read(
            lambda conn: usage_by_model(conn, workspace, since=since, until=until)
        )

    async def template_summaries(
        self, workspace: int, *, limit: int, offset: int
    ) -> tuple[list[TemplateSummary], int]:
        return await self._store.read(
            lambda conn: template_summaries(conn, workspace, limit=limit, offset=offset)
        )

    async def template_detail(self, workspace: int, name: str) -> TemplateDetail:
        return await self._store.read(lambda conn: template_detail(conn, workspace, name))

    async def workspace_name(self, workspace: int) -> str:
        found = await self._store.pool.fetchval(
            "SELECT name FROM workspaces WHERE id = $1", workspace
        )
        return "?" if found is None else str(found)

    async def model_prices(self, workspace: int) -> list[ModelPrice]:
        rows = await self._store.pool.fetch(
            "SELECT model, input_per_million, output_per_million FROM model_prices "
            'WHERE workspace_id = $1 ORDER BY model COLLATE "C"',
            workspace,
        )
        return [ModelPrice(str(r[0]), float(r[1]), float(r[2])) for r in rows]

    async def set_model_price(self, workspace: int, price: ModelPrice) -> None:
        check_text(price.model)
        await self._store.pool.execute(
            "INSERT INTO model_prices "
            "(workspace_id, model, input_per_million, output_per_million, updated_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, model) DO UPDATE SET "
            "input_per_million = excluded.input_per_million, "
            "output_per_million = excluded.output_per_million, updated_at = excluded.updated_at",
            workspace,
            price.model,
            price.input_per_million,
            price.output_per_million,
            time.time(),
        )

    async def delete_model_price(self, workspace: int, model: str) -> None:
        if "\x00" not in model:
            await self._store.pool.execute(
                "DELETE FROM model_prices WHERE workspace_id = $1 AND model = $2", workspace, model
            )
