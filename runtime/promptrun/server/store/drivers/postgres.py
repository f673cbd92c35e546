"""The PostgreSQL driver: operations on an asyncpg pool, for several server processes.

``promptrun serve --db postgresql://user@host/db`` selects it. Every process reads and writes
the database directly: no process keeps a cache another's write could make stale, so a
template published through one process is what the next fetch through any other returns, and
an API key added by one is accepted by all. A write is one transaction, run again when it lost
a deadlock or a serialization race; a read is one read-only repeatable-read transaction (one
snapshot). Websocket pushes cross processes through LISTEN/NOTIFY (``_pg_relay``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from promptrun.server.store._pg_url import redact
from promptrun.server.store.base import Deliver, StoreRelay
from promptrun.server.store.drivers._pg_relay import PgRelay
from promptrun.server.store.queries._sql import Op, Query, advance
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.postgres import PostgresDialect

__all__ = ["PostgresDriver", "run"]

T = TypeVar("T")
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"

# A transaction that lost a deadlock or a serialization race did nothing: run it again.
_RETRY = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 5
_COMMAND_TIMEOUT = 60.0  # seconds a statement may take
# The start-up transaction's statements (migrations, filling what a migration added) may
# read a whole large log: minutes, not a minute.
_SETUP_TIMEOUT = 6 * 3600.0


async def _execute(conn: Conn, query: Query, timeout: float | None = None) -> Any:
    if query.fetch == "all":
        return [tuple(r) for r in await conn.fetch(query.sql, *query.args, timeout=timeout)]
    if query.fetch == "one":
        row = await conn.fetchrow(query.sql, *query.args, timeout=timeout)
        return None if row is None else tuple(row)
    if query.fetch == "value":
        return await conn.fetchval(query.sql, *query.args, timeout=timeout)
    if query.fetch == "many":
        await conn.executemany(query.sql, query.args, timeout=timeout)
    else:
        await conn.execute(query.sql, *query.args, timeout=timeout)
    return None


async def run(
    conn: Conn, op: Op[T], after: list[Callable[[], object]], timeout: float | None = None
) -> T:
    """Run ``op`` to its end on ``conn`` (inside the caller's transaction); ``timeout`` is
    each statement's limit (None: the pool's)."""
    step = advance(op, None, after)
    while isinstance(step, Query):
        try:
            answer = await _execute(conn, step, timeout)
        except BaseException:
            op.close()
            raise
        step = advance(op, answer, after)
    return step.value  # type: ignore[no-any-return]  # Done.value is the op's T


class PostgresDriver:
    """Runs operations on the PostgreSQL database at ``url``."""

    # Other processes write the same database: nothing read stays true for long.
    sees_every_write = False

    def __init__(self, url: str, *, min_connections: int = 2, max_connections: int = 10) -> None:
        self.url = url
        self.dialect: Dialect = PostgresDialect()
        self._min = min_connections
        self._max = max_connections
        self._pool: Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresDriver({redact(self.url)!r})"

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("the store is not started (or already closed)")
        return self._pool

    async def start(self, setup: Callable[[Dialect], Op[Any]]) -> None:
        """Connect and run ``setup`` (migrations) in the first transaction."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                # PgBouncer in transaction mode and schema changes both break cached plans
                # less often than they cost; keep asyncpg's default statement cache.
                command_timeout=_COMMAND_TIMEOUT,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise RuntimeError(
                f"cannot connect to PostgreSQL at {redact(self.url)}: {exc}"
            ) from exc
        try:
            await self.write(setup, timeout=_SETUP_TIMEOUT)
        except BaseException as exc:
            await self.close()
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

    async def read(self, make: Callable[[Dialect], Op[T]]) -> T:
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return await run(conn, make(self.dialect), [])

    async def write(self, make: Callable[[Dialect], Op[T]], *, timeout: float | None = None) -> T:
        for attempt in range(_ATTEMPTS):
            after: list[Callable[[], object]] = []
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    value = await run(conn, make(self.dialect), after, timeout)
            except _RETRY:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            for callback in after:
                callback()
            return value
        raise AssertionError("unreachable")

    async def open_relay(self, deliver: Deliver) -> StoreRelay | None:
        """Start relaying websocket publications between the processes on this database."""
        relay = PgRelay(self.url, self.pool, deliver)
        await relay.start()
        return relay
