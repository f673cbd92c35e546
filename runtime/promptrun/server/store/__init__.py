"""The server's store: one set of operations, run on SQLite or on PostgreSQL.

- ``base.py``: :class:`~promptrun.server.store.base.Store`, everything the server asks of a
  store, and the plain records that cross that line.
- ``queries/``: every operation, written once, without I/O: a generator that yields SQL and
  receives rows (``queries/_sql.py``), with hooks for the few real differences between the
  two databases (``queries/dialect.py``, ``sqlite.py``, ``postgres.py``).
- ``migrations/<dialect>/NNNN_name.sql``: the schema, applied by one runner
  (``queries/migrate.py``).
- ``drivers/``: the I/O. SQLite: one writer thread committing queued writes in batches,
  reader threads. PostgreSQL: an asyncpg pool, and LISTEN/NOTIFY between server processes.
- ``_store.py``: the one Store, an operation and a driver per method.

:func:`sqlite_store` and :func:`postgres_store` make one (the server picks by ``--db``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptrun.server.store.base import Store

__all__ = ["postgres_store", "sqlite_store"]


def sqlite_store(
    path: Path | str,
    *,
    write_batch: int = 512,
    read_threads: int = 2,
    cache_entries: int = 10_000,
    catch_up_after: float | None = 0.05,
) -> Store:
    """A store on the SQLite file at ``path`` (made on start if new); call ``start()`` first.

    ``catch_up_after``: seconds without a write before what the dashboard derives from
    requests is brought up to date (None: only when it lags far behind, or when asked).
    """
    from promptrun.server.store._store import SQLStore
    from promptrun.server.store.drivers.sqlite import SQLiteDriver

    driver = SQLiteDriver(
        Path(path),
        write_batch=write_batch,
        read_threads=read_threads,
        catch_up_after=catch_up_after,
    )
    return SQLStore(driver, cache_entries=cache_entries)


def postgres_store(url: str, *, min_connections: int = 2, max_connections: int = 10) -> Store:
    """A store on the PostgreSQL database at ``url`` (needs ``promptrun[postgres]``)."""
    from promptrun.server.store._store import SQLStore
    from promptrun.server.store.drivers.postgres import PostgresDriver  # asyncpg only when used

    driver = PostgresDriver(url, min_connections=min_connections, max_connections=max_connections)
    return SQLStore(driver)
