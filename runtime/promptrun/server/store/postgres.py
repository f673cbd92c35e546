"""The PostgreSQL store: several ``promptrun serve`` processes on one database.

``promptrun serve --db postgresql://user@host/db`` selects it. Every process reads and writes
the database directly: no process keeps a cache another's write could make stale, so a
template published through one process is what the next fetch through any other returns, and
an API key added by one is accepted by all. Writes are short transactions on a connection
pool; batch ingestion is a few multi-row statements per batch (see ``_pg_requests``), and is
idempotent by client id across processes. Websocket pushes cross processes through
LISTEN/NOTIFY (``_pg_relay``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from promptrun.server.store import _pg_requests, _pg_templates
from promptrun.server.store._pg_db import Conn, Pool, open_pool, retrying
from promptrun.server.store._pg_relay import Deliver, PgRelay
from promptrun.server.store._pg_requests import Facet, UnstorableText, check_text
from promptrun.server.store._pg_schema import migrate
from promptrun.server.store._pg_url import redact
from promptrun.server.store.base import (
    NewVersion,
    NotFoundError,
    Rejected,
    RequestRow,
    StoreConfigError,
    TemplateVersion,
    TrackCall,
)
from promptrun.wire.ingest import IngestResult

__all__ = ["PostgresStore", "UnstorableText"]

T = TypeVar("T")
_MAX_KNOWN_FACETS = 100_000


class PostgresStore:
    """:class:`~promptrun.server.store.base.Store` on a PostgreSQL database (asyncpg)."""

    def __init__(self, url: str, *, min_connections: int = 2, max_connections: int = 10) -> None:
        self.url = url
        self._min = min_connections
        self._max = max_connections
        self._pool: Pool | None = None
        # Filter-menu values this process knows are stored; they are never deleted.
        self._facets: set[Facet] = set()
        from promptrun.server.store._pg_dashboard import PostgresDashboard
        from promptrun.server.store._pg_workflows import PostgresWorkflows

        self.dashboard = PostgresDashboard(self)
        self.workflows = PostgresWorkflows(self)

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("the store is not started (or already closed)")
        return self._pool

    async def start(self) -> None:
        """Connect and bring the schema up to date (one process at a time migrates)."""
        self._pool = await open_pool(self.url, min_size=self._min, max_size=self._max)
        try:
            async with self._pool.acquire() as conn:
                await migrate(conn)
        except BaseException as exc:
            await self._pool.close()
            self._pool = None
            if isinstance(exc, asyncpg.PostgresError):
                raise RuntimeError(
                    f"cannot bring the PostgreSQL schema at {redact(self.url)} up to date: {exc}"
                ) from exc
            raise

    async def close(self) -> None:
        """Wait for the queries in flight, then close the pool."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def read(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``work(conn)`` in a read-only transaction: its queries see one snapshot."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return await work(conn)

    async def write(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``work(conn)`` in a transaction; return once it committed."""
        return await retrying(self.pool, work)

    async def _write_with_facets(self, work: Callable[[Conn, set[Facet]], Awaitable[T]]) -> T:
        async def run(conn: Conn) -> tuple[T, set[Facet]]:
            found: set[Facet] = set()
            value = await work(conn, found)
            new = found - self._facets
            await _pg_requests.save_facets(conn, new)
            return value, new

        value, new = await self.write(run)
        if len(self._facets) + len(new) > _MAX_KNOWN_FACETS:
            self._facets.clear()
        self._facets |= new
        return value

    # keys, workspaces, shared secrets

    async def workspace_for_key(self, key_hash: str) -> int | None:
        found = await self.pool.fetchval(
            "SELECT workspace_id FROM api_keys WHERE key_hash = $1", key_hash
        )
        return None if found is None else int(found)

    async def add_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        """Register keys; processes starting together with the same keys all succeed."""

        async def work(conn: Conn) -> None:
            now = time.time()
            for workspace, key_hash in sorted(keys):
                check_text(workspace)
                await conn.execute(
                    "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO NOTHING",
                    workspace,
                    now,
                )
                workspace_id = await conn.fetchval(
                    "SELECT id FROM workspaces WHERE name = $1", workspace
                )
                await conn.execute(
                    "INSERT INTO api_keys (key_hash, workspace_id, created_at) "
                    "VALUES ($1, $2, $3) ON CONFLICT (key_hash) DO NOTHING",
                    key_hash,
                    workspace_id,
                    now,
                )
                owner = await conn.fetchval(
                    "SELECT w.name FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id "
                    "WHERE k.key_hash = $1",
                    key_hash,
                )
                if owner != workspace:
                    raise StoreConfigError(
                        f"an API key given for workspace {workspace!r} already belongs to "
                        f"workspace {owner!r} in this database; a key has one workspace"
                    )

        await self.write(work)

    async def has_keys(self) -> bool:
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM api_keys)"))

    async def shared_secret(self, name: str) -> bytes:
        """A random secret every process on this database shares (made by the first to ask)."""
        await self.pool.execute(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name,
            secrets.token_bytes(32),
        )
        value = await self.pool.fetchval("SELECT value FROM server_secrets WHERE name = $1", name)
        return bytes(value)

    async def open_relay(self, deliver: Deliver) -> PgRelay:
        """Start relaying websocket publications between the processes on this database."""
        relay = PgRelay(self.url, self.pool, deliver)
        await relay.start()
        return relay

    # registry

    async def get_version(
        self,
        workspace: int,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        metadata_filters: Mapping[str, Any] | None = None,
    ) -> TemplateVersion:
        if "\x00" in name or (label is not None and "\x00" in label):
            raise NotFoundError(f"prompt template {name!r} not found in this workspace")
        return await self.read(
            lambda conn: _pg_templates.select_version(
                conn,
                workspace,
                name,
                version=version,
                label=label,
                metadata_filters=metadata_filters,
            )
        )

    async def list_templates(
        self, workspace: int, *, page: int, per_page: int, label: str | None
    ) -> tuple[list[TemplateVersion], int]:
        if label is not None and "\x00" in label:
            return [], 0
        return await self.read(
            lambda conn: _pg_templates.list_templates(
                conn, workspace, page=page, per_page=per_page, label=label
            )
        )

    async def publish(self, workspace: int, new: NewVersion) -> TemplateVersion:
        check_text(new.prompt_name, new.commit_message, *new.release_labels)
        return await self.write(
            lambda conn: _pg_templates.publish(conn, workspace, new, time.time())
        )

    # request log

    async def insert_request(self, workspace: int, row: RequestRow) -> int:
        return await self._write_with_facets(
            lambda conn, facets: _pg_requests.insert_request(
                conn, workspace, row, time.time(), facets
            )
        )

    async def track(self, workspace: int, call: TrackCall) -> int:
        try:
            return await self._write_with_facets(
                lambda conn, facets: _pg_requests.apply_track_call(
                    conn, workspace, call, time.time(), facets
                )
            )
        except _pg_requests.AlreadyApplied as exc:
            return exc.request_id

    async def create_group(self, workspace: int) -> int:
        return await self.write(
            lambda conn: _pg_requests.create_group(conn, workspace, time.time())
        )

    async def ingest(
        self, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected]
    ) -> list[IngestResult]:
        return await self._write_with_facets(
            lambda conn, facets: _pg_requests.ingest(conn, workspace, items, time.time(), facets)
        )

    async def stored_ids(self, workspace: int, client_ids: Sequence[str]) -> dict[str, int]:
        return await self.read(lambda conn: _pg_requests.stored_ids(conn, workspace, client_ids))

    async def list_requests(
        self, workspace: int, *, limit: int, offset: int, prompt_name: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        return await self.read(
            lambda conn: _pg_requests.list_requests(
                conn, workspace, limit=limit, offset=offset, prompt_name=prompt_name
            )
        )

    async def get_request(self, workspace: int, ref: int | str) -> dict[str, Any]:
        return await self.read(lambda conn: _pg_requests.get_request(conn, workspace, ref))
