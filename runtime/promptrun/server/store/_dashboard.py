"""Read queries for the dashboard: filtered request search, time series, usage, versions, prices.

SQL functions of a connection plus :class:`SQLiteDashboard`, which runs them on the store's
reader pool (writes, only the price table, on its writer). Every query is scoped by workspace.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import msgspec

from promptrun.server.store._db import ReadPool, WriterThread
from promptrun.server.store._requests import _SUMMARY_COLUMNS, _summary
from promptrun.server.store.base import NotFoundError

__all__ = [
    "Bucket",
    "ModelPrice",
    "ModelUsage",
    "RequestQuery",
    "SQLiteDashboard",
    "TemplateDetail",
    "TemplateSummary",
    "VersionInfo",
]

T = TypeVar("T")
_LIKE_ESCAPE = "!"
# json_each fails the whole query on one row whose tags are not JSON (written around the server).
_TAGS = "CASE WHEN json_valid(requests.tags) THEN requests.tags ELSE '[]' END"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestQuery:
    """Filters for the request log; ``None`` means "any". Times are epoch seconds."""

    prompt_name: str | None = None
    prompt_version: int | None = None
    tag: str | None = None
    provider: str | None = None
    model: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time slice of the log: ``start`` is epoch seconds; latencies are seconds."""

    start: float
    requests: int
    errors: int
    mean_latency: float
    max_latency: float


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens and logged prices of one model; ``unpriced_*`` are tokens of requests logged
    without a price, which the price table turns into money."""

    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    logged_price: float
    unpriced_input_tokens: int
    unpriced_output_tokens: int


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """US dollars per million input and output tokens."""

    model: str
    input_per_million: float
    output_per_million: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSummary:
    name: str
    latest_version: int
    versions: int
    labels: list[str]
    tags: list[str]
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    number: int
    commit_message: str | None
    created_at: float
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateDetail:
    template_id: int
    name: str
    tags: list[str]
    created_at: float
    versions: list[VersionInfo]  # newest first


def _real(value: Any) -> float:
    """An aggregate as a float: SQL NULL (no row, or only NaN arithmetic) is 0."""
    return 0.0 if value is None else float(value)


def _whole(value: Any) -> int:
    """A float total as an int; an infinite one (rows written around the server) is 0."""
    number = _real(value)
    return int(number) if math.isfinite(number) else 0


def _like_pattern(text: str) -> str:
    # The log keeps messages as JSON text, so look for the query as JSON would spell it.
    spelled = msgspec.json.encode(text).decode()[1:-1]
    for char in (_LIKE_ESCAPE, "%", "_"):
        spelled = spelled.replace(char, _LIKE_ESCAPE + char)
    return f"%{spelled}%"


def _where(workspace: int, query: RequestQuery) -> tuple[str, tuple[Any, ...]]:
    clauses = ["workspace_id = ?"]
    args: list[Any] = [workspace]
    for column, value in (
        ("prompt_name", query.prompt_name),
        ("prompt_version", query.prompt_version),
        ("provider", query.provider),
        ("model", query.model),
        ("status", query.status),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if query.tag is not None:
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({_TAGS}) WHERE value = ?)")
        args.append(query.tag)
    if query.since is not None:
        clauses.append("start_time >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("start_time < ?")
        args.append(query.until)
    if query.text:
        clauses.append(f"blueprint LIKE ? ESCAPE '{_LIKE_ESCAPE}'")
        args.append(_like_pattern(query.text))
    return " AND ".join(clauses), tuple(args)


def search_requests(
    conn: sqlite3.Connection, workspace: int, query: RequestQuery, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, summaries as ``list_requests`` gives them, and the total matching."""
    where, args = _where(workspace, query)
    total = conn.execute(f"SELECT COUNT(*) FROM requests WHERE {where}", args).fetchone()[0]
    cursor = conn.execute(
        f"SELECT {_SUMMARY_COLUMNS} FROM requests WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    names = [d[0] for d in cursor.description]
    return [_summary(row, names) for row in cursor], int(total)


def request_facets(conn: sqlite3.Connection, workspace: int) -> dict[str, list[str]]:
    """The values seen in the log, for filter menus: prompts, providers, models, statuses, tags."""
    facets: dict[str, list[str]] = {}
    for name, column in (
        ("prompts", "prompt_name"),
        ("providers", "provider"),
        ("models", "model"),
        ("statuses", "status"),
    ):
        rows = conn.execute(
            f"SELECT DISTINCT {column} FROM requests WHERE workspace_id = ? "
            f"AND {column} IS NOT NULL AND {column} != '' ORDER BY 1 LIMIT 500",
            (workspace,),
        ).fetchall()
        facets[name] = [row[0] for row in rows]
    rows = conn.execute(
        f"SELECT DISTINCT j.value FROM requests, json_each({_TAGS}) j "
        "WHERE requests.workspace_id = ? ORDER BY 1 LIMIT 500",
        (workspace,),
    ).fetchall()
    facets["tags"] = [str(row[0]) for row in rows]
    return facets


def request_series(
    conn: sqlite3.Connection, workspace: int, *, since: float, until: float, bucket: float
) -> list[Bucket]:
    """Every bucket from ``since`` to ``until`` (empty ones as zeros), oldest first."""
    rows = conn.execute(
        "SELECT CAST((start_time - ?) / ? AS INTEGER) AS slot, COUNT(*), "
        "SUM(status != 'SUCCESS'), AVG(MAX(end_time - start_time, 0)), "
        "MAX(MAX(end_time - start_time, 0)) FROM requests "
        "WHERE workspace_id = ? AND start_time >= ? AND start_time < ? GROUP BY slot",
        (since, bucket, workspace, since, until),
    ).fetchall()
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
    conn: sqlite3.Connection, workspace: int, *, since: float | None, until: float | None
) -> list[ModelUsage]:
    """Per model: requests, tokens, and what was logged with and without a price."""
    where, args = _where(workspace, RequestQuery(since=since, until=until))
    # TOTAL, not SUM: a float sum never fails with "integer overflow", whatever a row holds.
    rows = conn.execute(
        "SELECT model, COUNT(*), TOTAL(input_tokens), TOTAL(output_tokens), "
        "TOTAL(CASE WHEN price > 0 THEN price ELSE 0 END), "
        "TOTAL(CASE WHEN price > 0 THEN 0 ELSE input_tokens END), "
        "TOTAL(CASE WHEN price > 0 THEN 0 ELSE output_tokens END) "
        f"FROM requests WHERE {where} GROUP BY model ORDER BY COUNT(*) DESC",
        args,
    ).fetchall()
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


def template_summaries(
    conn: sqlite3.Connection, workspace: int, *, limit: int, offset: int
) -> tuple[list[TemplateSummary], int]:
    """Templates by name, each with its latest version number, version count and labels."""
    total = conn.execute(
        "SELECT COUNT(*) FROM prompt_templates WHERE workspace_id = ?", (workspace,)
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT t.id, t.name, t.tags, MAX(v.number), COUNT(v.id), MAX(v.created_at) "
        "FROM prompt_templates t JOIN prompt_versions v ON v.template_id = t.id "
        "WHERE t.workspace_id = ? GROUP BY t.id ORDER BY t.name LIMIT ? OFFSET ?",
        (workspace, limit, offset),
    ).fetchall()
    summaries = []
    for template_id, name, tags, latest, versions, updated in rows:
        labels = conn.execute(
            "SELECT label FROM release_labels WHERE template_id = ? ORDER BY label",
            (template_id,),
        ).fetchall()
        summaries.append(
            TemplateSummary(
                name=name,
                latest_version=int(latest),
                versions=int(versions),
                labels=[row[0] for row in labels],
                tags=msgspec.json.decode(tags),
                updated_at=float(updated),
            )
        )
    return summaries, int(total)


def template_detail(conn: sqlite3.Connection, workspace: int, name: str) -> TemplateDetail:
    """A template's versions, newest first, each with its commit message and labels."""
    found = conn.execute(
        "SELECT id, tags, created_at FROM prompt_templates WHERE workspace_id = ? AND name = ?",
        (workspace, name),
    ).fetchone()
    if found is None:
        raise NotFoundError(f"prompt template {name!r} not found in this workspace")
    template_id, tags, created_at = found
    labels: dict[int, list[str]] = {}
    for label, version_id in conn.execute(
        "SELECT label, version_id FROM release_labels WHERE template_id = ? ORDER BY label",
        (template_id,),
    ):
        labels.setdefault(version_id, []).append(label)
    versions = [
        VersionInfo(
            number=number,
            commit_message=message,
            created_at=created,
            labels=labels.get(version_id, []),
        )
        for version_id, number, message, created in conn.execute(
            "SELECT id, number, commit_message, created_at FROM prompt_versions "
            "WHERE template_id = ? ORDER BY number DESC",
            (template_id,),
        )
    ]
    return TemplateDetail(
        template_id=template_id,
        name=name,
        tags=msgspec.json.decode(tags),
        created_at=created_at,
        versions=versions,
    )


def workspace_name(conn: sqlite3.Connection, workspace: int) -> str:
    found = conn.execute("SELECT name FROM workspaces WHERE id = ?", (workspace,)).fetchone()
    return "?" if found is None else str(found[0])


def model_prices(conn: sqlite3.Connection, workspace: int) -> list[ModelPrice]:
    rows = conn.execute(
        "SELECT model, input_per_million, output_per_million FROM model_prices "
        "WHERE workspace_id = ? ORDER BY model",
        (workspace,),
    ).fetchall()
    return [ModelPrice(str(r[0]), float(r[1]), float(r[2])) for r in rows]


def set_model_price(conn: sqlite3.Connection, workspace: int, price: ModelPrice) -> None:
    conn.execute(
        "INSERT INTO model_prices "
        "(workspace_id, model, input_per_million, output_per_million, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, model) DO UPDATE SET "
        "input_per_million = excluded.input_per_million, "
        "output_per_million = excluded.output_per_million, updated_at = excluded.updated_at",
        (workspace, price.model, price.input_per_million, price.output_per_million, time.time()),
    )


def delete_model_price(conn: sqlite3.Connection, workspace: int, model: str) -> None:
    conn.execute(
        "DELETE FROM model_prices WHERE workspace_id = ? AND model = ?", (workspace, model)
    )


class SQLiteDashboard:
    """The dashboard's queries on a :class:`~promptrun.server.store.sqlite.SQLiteStore`."""

    def __init__(self, readers: ReadPool, writer: WriterThread) -> None:
        self._readers = readers
        self._writer = writer

    async def _read(self, work: Callable[..., T], /, **kwargs: Any) -> T:
        return await self._readers.run(partial(work, **kwargs))

    async def search_requests(
        self, workspace: int, query: RequestQuery, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._read(
            search_requests, workspace=workspace, query=query, limit=limit, offset=offset
        )

    async def request_facets(self, workspace: int) -> dict[str, list[str]]:
        return await self._read(request_facets, workspace=workspace)

    async def request_series(
        self, workspace: int, *, since: float, until: float, bucket: float
    ) -> list[Bucket]:
        return await self._read(
            request_series, workspace=workspace, since=since, until=until, bucket=bucket
        )

    async def usage_by_model(
        self, workspace: int, *, since: float | None = None, until: float | None = None
    ) -> list[ModelUsage]:
        return await self._read(usage_by_model, workspace=workspace, since=since, until=until)

    async def template_summaries(
        self, workspace: int, *, limit: int, offset: int
    ) -> tuple[list[TemplateSummary], int]:
        return await self._read(template_summaries, workspace=workspace, limit=limit, offset=offset)

    async def template_detail(self, workspace: int, name: str) -> TemplateDetail:
        return await self._read(template_detail, workspace=workspace, name=name)

    async def workspace_name(self, workspace: int) -> str:
        return await self._read(workspace_name, workspace=workspace)

    async def model_prices(self, workspace: int) -> list[ModelPrice]:
        return await self._read(model_prices, workspace=workspace)

    async def set_model_price(self, workspace: int, price: ModelPrice) -> None:
        await self._writer.submit(partial(set_model_price, workspace=workspace, price=price))

    async def delete_model_price(self, workspace: int, model: str) -> None:
        await self._writer.submit(partial(delete_model_price, workspace=workspace, model=model))
