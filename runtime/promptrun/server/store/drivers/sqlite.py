"""The SQLite driver: operations on one file in WAL mode, written by one batching thread.

Writes run on the writer thread (``_sqlite_threads.WriterThread``): as many operations as are
waiting, each in its own savepoint, share one committed transaction (group commit), and each
one's caller hears back once that transaction has committed. When writes pause it brings
what the dashboard derives from requests up to date (the dialect's ``catch_up``: rollups,
tag and metadata rows, the text search index), a chunk at a time. Reads run on a few reader
threads, each operation in one read transaction (one snapshot). The event loop never waits
on the disk.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from promptrun.server.store.base import Deliver, StoreRelay
from promptrun.server.store.drivers._sqlite_threads import ReadPool, WriterThread
from promptrun.server.store.queries._sql import Op, Query, advance
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.sqlite import SQLITE

__all__ = ["SQLiteDriver", "run"]

T = TypeVar("T")
_NUMBERED = re.compile(r"\$(\d+)")
_CATCH_UP_CHUNK = 500  # requests derived per idle transaction: some tens of milliseconds
# Under constant writes the derived data may lag this many requests behind (reads add those
# rows themselves: a few hundred milliseconds at most) before catching up takes writer time.
_LAG_BUDGET = 20_000


@lru_cache(maxsize=1024)
def _numbered(sql: str) -> str:
    return _NUMBERED.sub(r"?\1", sql)


def _execute(conn: sqlite3.Connection, query: Query) -> Any:
    # $1 -> ?1: SQLite's own numbered parameters (statements without any are left alone).
    sql = _numbered(query.sql) if "$" in query.sql else query.sql
    if query.fetch == "many":
        conn.executemany(sql, query.args)
        return None
    cursor = conn.execute(sql, query.args)
    if query.fetch == "all":
        return cursor.fetchall()
    if query.fetch == "none":
        return None
    row = cursor.fetchone()
    if query.fetch == "one" or row is None:
        return row
    return row[0]


def run(conn: sqlite3.Connection, op: Op[T], after: list[Callable[[], object]]) -> T:
    """Run ``op`` to its end on ``conn`` (inside the caller's transaction)."""
    step = advance(op, None, after)
    while isinstance(step, Query):
        try:
            answer = _execute(conn, step)
        except BaseException:
            op.close()
            raise
        step = advance(op, answer, after)
    return step.value  # type: ignore[no-any-return]  # Done.value is the op's T


class SQLiteDriver:
    """Runs operations on the SQLite file at ``path``."""

    dialect: Dialect = SQLITE
    # One process writes the file through this driver, so it sees every write: a cache of
    # what it read stays true until it writes again.
    sees_every_write = True

    def __init__(
        self,
        path: Path,
        *,
        write_batch: int = 512,
        read_threads: int = 2,
        catch_up_after: float | None = 0.05,
    ) -> None:
        self.path = Path(path)
        self._writer = WriterThread(
            self.path, max_batch=write_batch, idle=self._catch_up, quiet=catch_up_after
        )
        self._readers = ReadPool(self.path, threads=read_threads)

    def __repr__(self) -> str:
        return f"SQLiteDriver({str(self.path)!r})"

    async def start(self, setup: Callable[[Dialect], Op[Any]]) -> None:
        """Open the file (made if new) and run ``setup`` (migrations) before any write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def first(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                run(conn, setup(self.dialect), [])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await asyncio.to_thread(self._writer.start, first)

    async def close(self) -> None:
        """Commit every queued write, then close the connections."""
        await asyncio.to_thread(self._writer.close)
        await asyncio.to_thread(self._readers.close)

    async def read(self, make: Callable[[Dialect], Op[T]]) -> T:
        return await self._readers.run(lambda conn: run(conn, make(self.dialect), []))

    async def write(self, make: Callable[[Dialect], Op[T]]) -> T:
        after: list[Callable[[], object]] = []
        value = await self._writer.submit(lambda conn: run(conn, make(self.dialect), after))
        for callback in after:
            callback()
        return value

    def _catch_up(self, conn: sqlite3.Connection, busy: bool) -> bool:
        lag = _LAG_BUDGET if busy else 0
        return run(conn, self.dialect.catch_up(_CATCH_UP_CHUNK, lag=lag), [])

    async def catch_up(self, chunk: int = _CATCH_UP_CHUNK * 20) -> None:
        """Derive everything not derived yet, now (tests, benchmarks, bulk loads)."""
        while await self.write(lambda d: d.catch_up(chunk)):
            pass

    async def open_relay(self, deliver: Deliver) -> StoreRelay | None:
        return None
