"""The one :class:`~promptrun.server.store.base.Store`: the operations of ``queries/`` on a driver.

Each method names its operation and whether it reads or writes; the driver runs it (SQLite:
on its writer thread or a reader; PostgreSQL: on its pool) inside one transaction. Adding an
operation is a generator in ``queries/``, its signature in ``base.Store``, and one line here.

With a driver that sees every write (SQLite), template versions are cached in memory.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from promptrun.server.store._cache import VersionCache, cache_key
from promptrun.server.store.base import (
    ApiKey,
    Bucket,
    DashboardSession,
    Deliver,
    ExpiredExecution,
    KeyGrant,
    LabelMove,
    LogStats,
    ModelPrice,
    ModelUsage,
    NewKey,
    NewVersion,
    NewWorkflowVersion,
    NodeRow,
    PageRequest,
    PromptMetrics,
    Rejected,
    RequestPage,
    RequestQuery,
    RequestRow,
    SigninPolicy,
    SpanRow,
    StoreRelay,
    TemplateDetail,
    TemplateLabels,
    TemplateSummary,
    TemplateVersion,
    TraceQuery,
    TrackCall,
    WorkflowVersion,
)
from promptrun.server.store.queries import (
    dashboard,
    labels,
    leases,
    log_search,
    requests,
    rollups,
    sessions,
    templates,
    traces,
    workflows,
)
from promptrun.server.store.queries import keys as key_queries
from promptrun.server.store.queries._sql import Op
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.migrate import migrate
from promptrun.wire.ingest import IngestResult

__all__ = ["Driver", "SQLStore"]

T = TypeVar("T")
P = ParamSpec("P")


class Driver(Protocol):
    """Runs operations on one database, each inside one transaction."""

    sees_every_write: bool  # no other process writes this database

    async def start(self, setup: Callable[[Dialect], Op[Any]]) -> None:
        """Connect, and run ``setup`` in the first write transaction."""

    async def close(self) -> None: ...

    async def read(self, make: Callable[[Dialect], Op[T]]) -> T: ...

    async def write(self, make: Callable[[Dialect], Op[T]]) -> T:
        """Run the operation ``make`` builds (again, if the database asks for a retry)."""

    async def open_relay(self, deliver: Deliver) -> StoreRelay | None: ...


class SQLStore:
    """:class:`~promptrun.server.store.base.Store` over a SQLite or PostgreSQL driver."""

    def __init__(self, driver: Driver, *, cache_entries: int = 10_000) -> None:
        self.driver = driver
        self._cache = VersionCache(cache_entries) if driver.sees_every_write else None

    def __repr__(self) -> str:
        return f"SQLStore({self.driver!r})"

    async def _read(
        self, op: Callable[Concatenate[Dialect, P], Op[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await self.driver.read(lambda d: op(d, *args, **kwargs))

    async def _write(
        self, op: Callable[Concatenate[Dialect, P], Op[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await self.driver.write(lambda d: op(d, *args, **kwargs))

    # lifetime and the processes sharing the database

    async def start(self) -> None:
        await self.driver.start(_set_up)

    async def close(self) -> None:
        await self.driver.close()

    async def shared_secret(self, name: str) -> bytes:
        return await self._write(key_queries.shared_secret, name, secrets.token_bytes(32))

    async def open_relay(self, deliver: Deliver) -> StoreRelay | None:
        return await self.driver.open_relay(deliver)

    # keys, dashboard sessions and sign-in limits, execution leases (subject: keys)

    async def workspace_for_key(self, key_hash: str) -> int | None:
        return await self._read(key_queries.workspace_for_key, key_hash)

    async def grants_for(self, key_hashes: Sequence[str]) -> dict[str, KeyGrant]:
        return await self._read(key_queries.grants_for, key_hashes)

    async def add_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        await self._write(key_queries.add_keys, keys, time.time())

    async def register_keys(self, keys: Sequence[NewKey]) -> list[ApiKey]:
        return await self._write(key_queries.register_keys, keys, time.time())

    async def list_keys(self, workspace: int | None, *, revoked: bool = False) -> list[ApiKey]:
        return await self._read(key_queries.list_keys, workspace, revoked=revoked)

    async def revoke_key(self, workspace: int | None, key_id: int) -> ApiKey:
        return await self._write(key_queries.revoke_key, workspace, key_id, time.time())

    async def touch_keys(self, used: Sequence[tuple[int, float, str]]) -> None:
        await self._write(key_queries.touch_keys, used)

    async def upgrade_key_hashes(self, rehash: Callable[[str], str]) -> int:
        return await self._write(key_queries.upgrade_key_hashes, rehash)

    async def has_keys(self) -> bool:
        return await self._read(key_queries.has_keys)

    async def workspace_name(self, workspace: int) -> str:
        return await self._read(key_queries.workspace_name, workspace)

    async def create_session(
        self, id_hash: str, key_id: int, csrf_token: str, *, expires_at: float, idle: float
    ) -> None:
        await self._write(
            sessions.create_session, id_hash, key_id, csrf_token,
            now=time.time(), expires_at=expires_at, idle=idle,
        )  # fmt: skip

    async def get_session(self, id_hash: str, *, idle: float) -> DashboardSession | None:
        return await self._read(sessions.get_session, id_hash, now=time.time(), idle=idle)

    async def touch_session(self, id_hash: str) -> None:
        await self._write(sessions.touch_session, id_hash, time.time())

    async def end_session(self, id_hash: str) -> None:
        await self._write(sessions.end_session, id_hash)

    async def signin_wait(self, subjects: Sequence[str]) -> float:
        return await self._read(sessions.signin_wait, subjects, time.time())

    async def signin_failed(self, subjects: Sequence[str], policy: SigninPolicy) -> float:
        return await self._write(sessions.signin_failed, subjects, policy, time.time())

    async def renew_leases(self, owner: str, expires: float) -> list[int]:
        return await self._write(leases.renew_leases, owner, expires)

    async def expired_executions(self, now: float, *, limit: int = 100) -> list[ExpiredExecution]:
        return await self._read(leases.expired_executions, now, limit=limit)

    async def fail_expired_execution(
        self,
        execution: ExpiredExecution,
        *,
        expired_before: float,
        message: str,
        nodes: Sequence[NodeRow],
    ) -> bool:
        return await self._write(
            leases.fail_expired_execution, execution,
            expired_before=expired_before, message=message, nodes=nodes, now=time.time(),
        )  # fmt: skip

    # the registry

    async def get_version(
        self,
        workspace: int,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        metadata_filters: Mapping[str, Any] | None = None,
    ) -> TemplateVersion:
        def fetch() -> Awaitable[TemplateVersion]:
            return self._read(
                templates.select_version,
                workspace,
                name,
                version=version,
                label=label,
                metadata_filters=metadata_filters,
            )

        if self._cache is None:
            return await fetch()
        template, key = (workspace, name), cache_key(version, label, metadata_filters)
        cached = self._cache.get(template, key)
        if cached is not None:
            return cached
        generation = self._cache.generation(template)
        found = await fetch()
        self._cache.put(template, key, found, generation)
        return found

    async def list_templates(
        self, workspace: int, *, page: int, per_page: int, label: str | None
    ) -> tuple[list[TemplateVersion], int]:
        return await self._read(
            templates.list_templates, workspace, page=page, per_page=per_page, label=label
        )

    async def publish(self, workspace: int, new: NewVersion) -> TemplateVersion:
        try:
            return await self._write(templates.publish, workspace, new, time.time())
        finally:
            if self._cache is not None:
                # Labels moved and "latest" changed: every cached way of asking is stale.
                self._cache.invalidate((workspace, new.prompt_name))

    async def template_summaries(
        self, workspace: int, *, limit: int, offset: int
    ) -> tuple[list[TemplateSummary], int]:
        return await self._read(templates.template_summaries, workspace, limit=limit, offset=offset)

    async def template_detail(self, workspace: int, name: str) -> TemplateDetail:
        return await self._read(templates.template_detail, workspace, name)

    # release labels (the prompt lifecycle)

    def _moved(self, workspace: int, move: LabelMove) -> LabelMove:
        if self._cache is not None:
            self._cache.invalidate((workspace, move.prompt_name))
        return move

    async def template_labels(self, workspace: int, ref: int | str) -> TemplateLabels:
        return await self._read(labels.template_labels, workspace, ref)

    async def set_label(self, workspace: int, ref: int | str, label: str, number: int) -> LabelMove:
        move = await self._write(labels.set_label, workspace, ref, label, number, time.time())
        return self._moved(workspace, move)

    async def move_label(self, workspace: int, label_id: int, number: int) -> LabelMove:
        return self._moved(
            workspace, await self._write(labels.move_label, workspace, label_id, number)
        )

    async def delete_label(self, workspace: int, label_id: int) -> LabelMove:
        return self._moved(workspace, await self._write(labels.delete_label, workspace, label_id))

    # the request log

    async def insert_request(self, workspace: int, row: RequestRow) -> int:
        return await self._write(requests.insert_request, workspace, row, time.time())

    async def track(self, workspace: int, call: TrackCall) -> int:
        return await self._write(requests.track, workspace, call, time.time())

    async def create_group(self, workspace: int) -> int:
        return await self._write(requests.create_group, workspace, time.time())

    async def ingest(
        self, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected]
    ) -> list[IngestResult]:
        return await self._write(requests.ingest, workspace, items, time.time())

    async def stored_ids(self, workspace: int, client_ids: Sequence[str]) -> dict[str, int]:
        return await self._read(requests.stored_ids, workspace, client_ids)

    async def list_requests(
        self, workspace: int, *, limit: int, offset: int, prompt_name: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._read(
            log_search.list_requests,
            workspace,
            limit=limit,
            offset=offset,
            prompt_name=prompt_name,
        )

    async def get_request(self, workspace: int, ref: int | str) -> dict[str, Any]:
        return await self._read(requests.get_request, workspace, ref)

    # workflows

    async def publish_workflow(self, workspace: int, new: NewWorkflowVersion) -> WorkflowVersion:
        return await self._write(workflows.publish_workflow, workspace, new, time.time())

    async def get_workflow(
        self,
        workspace: int,
        ref: int | str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> WorkflowVersion:
        return await self._read(
            workflows.select_workflow, workspace, ref, version=version, label=label
        )

    async def list_workflows(
        self, workspace: int, *, page: int, per_page: int
    ) -> tuple[list[WorkflowVersion], int]:
        return await self._read(workflows.list_workflows, workspace, page=page, per_page=per_page)

    async def create_workflow_execution(
        self,
        workspace: int,
        version: WorkflowVersion,
        *,
        input_variables: dict[str, Any],
        metadata: dict[str, Any],
        return_all_outputs: bool,
        lease_owner: str | None = None,
        lease_expires: float | None = None,
        channel: str | None = None,
    ) -> int:
        return await self._write(
            workflows.create_execution,
            workspace,
            version,
            input_variables=input_variables,
            metadata=metadata,
            return_all_outputs=return_all_outputs,
            now=time.time(),
            lease_owner=lease_owner,
            lease_expires=lease_expires,
            channel=channel,
        )

    async def finish_workflow_execution(
        self,
        workspace: int,
        execution_id: int,
        *,
        status: str,
        nodes: Sequence[NodeRow],
        error_message: str | None = None,
    ) -> bool:
        return await self._write(
            workflows.finish_execution,
            workspace,
            execution_id,
            status=status,
            nodes=nodes,
            error_message=error_message,
            now=time.time(),
        )

    async def list_workflow_executions(
        self,
        workspace: int,
        *,
        workflow: int | str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._read(
            workflows.list_executions,
            workspace,
            workflow=workflow,
            status=status,
            limit=limit,
            offset=offset,
        )

    async def get_workflow_execution(self, workspace: int, execution_id: int) -> dict[str, Any]:
        return await self._read(workflows.get_execution, workspace, execution_id)

    # the dashboard's reads

    async def request_facets(self, workspace: int) -> dict[str, list[str]]:
        return await self._read(dashboard.request_facets, workspace)

    async def request_series(
        self, workspace: int, *, since: float, until: float, bucket: float
    ) -> list[Bucket]:
        return await self._read(
            dashboard.request_series, workspace, since=since, until=until, bucket=bucket
        )

    async def usage_by_model(
        self, workspace: int, *, since: float | None = None, until: float | None = None
    ) -> list[ModelUsage]:
        return await self._read(dashboard.usage_by_model, workspace, since=since, until=until)

    async def model_prices(self, workspace: int) -> list[ModelPrice]:
        return await self._read(dashboard.model_prices, workspace)

    async def set_model_price(self, workspace: int, price: ModelPrice) -> None:
        await self._write(dashboard.set_model_price, workspace, price, time.time())

    async def delete_model_price(self, workspace: int, model: str) -> None:
        await self._write(dashboard.delete_model_price, workspace, model)

    # the request log at scale (storeperf)

    async def request_page(
        self,
        workspace: int,
        query: RequestQuery,
        page: PageRequest,
        *,
        costs: Mapping[str, tuple[float, float]],
        with_blueprints: bool = False,
    ) -> RequestPage:
        return await self._read(
            log_search.request_page,
            workspace,
            query,
            page,
            costs=costs,
            with_blueprints=with_blueprints,
        )

    async def request_stats(self, workspace: int, query: RequestQuery) -> LogStats:
        return await self._read(log_search.request_stats, workspace, query)

    async def prompt_metrics(
        self,
        workspace: int,
        *,
        since: float,
        until: float | None,
        prompt_name: str | None = None,
    ) -> list[PromptMetrics]:
        return await self._read(
            dashboard.prompt_metrics,
            workspace,
            since=since,
            until=until,
            prompt_name=prompt_name,
        )

    # traces (queries/traces.py)

    async def insert_spans(self, workspace: int, spans: Sequence[SpanRow]) -> int:
        return await self._write(traces.insert_spans, workspace, spans, time.time())

    async def list_traces(
        self, workspace: int, query: TraceQuery, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._read(traces.list_traces, workspace, query, limit=limit, offset=offset)

    async def get_trace(self, workspace: int, trace_id: str, *, max_spans: int) -> dict[str, Any]:
        return await self._read(traces.get_trace, workspace, trace_id, max_spans=max_spans)

    async def trace_facets(self, workspace: int) -> dict[str, list[str]]:
        return await self._read(traces.trace_facets, workspace)

    async def trace_of_span(self, workspace: int, span_id: str) -> str | None:
        return await self._read(traces.trace_of_span, workspace, span_id)


def _set_up(d: Dialect) -> Op[int]:
    """The start-up transaction: migrate, then fill what a migration left to fill."""
    version = yield from migrate(d)
    yield from rollups.backfill(d)
    return version
