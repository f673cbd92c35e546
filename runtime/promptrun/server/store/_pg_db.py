"""asyncpg plumbing for the PostgreSQL store: connection types, the pool, retried transactions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from promptrun.server.store._pg_url import redact

__all__ = ["Conn", "Pool", "open_pool", "retrying"]

T = TypeVar("T")
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"

# A transaction that lost a deadlock or a serialization race did nothing: run it again.
_RETRY = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 5


async def open_pool(url: str, *, min_size: int, max_size: int) -> Pool:
    """A connection pool; a refused or unreachable server is a RuntimeError naming the URL."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            # PgBouncer in transaction mode and schema changes both break cached plans less
            # often than they cost; keep asyncpg's default statement cache.
            command_timeout=60,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise RuntimeError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
    assert pool is not None
    return pool


async def retrying(pool: Pool, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run ``work(conn)`` in a transaction, again when it lost a deadlock or serialization race."""
    for attempt in range(_ATTEMPTS):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except _RETRY:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
