"""SQLite off the event loop: one batching writer thread, a small pool of reader threads.

Writes are functions of a connection queued to the writer, which runs as many as are waiting
(up to ``max_batch``) in one transaction, each inside its own savepoint so one failing write
does not undo the others. A write's future completes only after its transaction committed,
so an acknowledged write is in the WAL and survives the process being killed.

Work that may lag behind the writes (the text search index) is an ``idle`` function of the
connection and of whether writes are coming: the writer runs it, a chunk per transaction,
once no write has come for ``quiet`` seconds, and every ``_IDLE_EVERY`` batches while writes
keep coming (it then does something only if it has fallen too far behind).

Readers use their own connections; in WAL mode they read the last committed state while a
write batch is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ReadPool", "WriterThread", "connect", "switch_to_wal"]

T = TypeVar("T")
log = logging.getLogger("promptrun.server.store")

# What a queued write carries: the work, and where to deliver its outcome.
_Op = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


_BUSY_TIMEOUT = 30.0  # seconds a statement waits for another connection's lock
_IDLE_EVERY = 8  # under constant writes, idle work may run once per this many batches


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, NORMAL sync.

    NORMAL in WAL mode makes a commit durable across a process crash (the WAL is in the OS's
    hands); only a power loss can drop the last commits.
    """
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT
    )
    try:
        switch_to_wal(conn, path)
    except BaseException:
        conn.close()
        raise
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def switch_to_wal(conn: sqlite3.Connection, path: Path, *, wait: float = _BUSY_TIMEOUT) -> None:
    """Put the database in WAL mode, waiting (up to ``wait`` seconds) for other connections.

    SQLite does not apply the busy timeout to this statement when it must upgrade a read lock
    to a write lock (on a new file, or one still in rollback mode): with another connection
    setting up the same file at that moment it fails at once with "database is locked". So
    several stores or server processes opening one new file together retry it here, with
    backoff, instead of failing.
    """
    deadline = time.monotonic() + wait
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError(
                    f"{exc}: {path} stayed locked for {wait:g}s while switching it to WAL "
                    "mode; is another program holding a transaction open on it?"
                ) from exc
            if delay == 0.001:
                log.debug("%s is busy while switching to WAL mode; retrying", path)
        time.sleep(delay * (1 + random.random()))  # jitter: racers do not retry in step
        delay = min(delay * 2, 0.1)


def _deliver(outcomes: list[_Outcome]) -> None:
    for future, value, error in outcomes:
        if future.done():  # the waiter was cancelled; the write happened all the same
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


class WriterThread:
    """The only writer: queued functions run in committed batches on one connection."""

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 512,
        idle: Callable[[sqlite3.Connection, bool], bool] | None = None,
        quiet: float | None = 0.05,
    ) -> None:
        self._path = path
        self._max_batch = max_batch
        self._idle = idle
        self._quiet = quiet
        self._idle_pending = idle is not None  # work may be left from before a restart
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="promptrun-db-writer", daemon=True)
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._setup: Callable[[sqlite3.Connection], Any] | None = None
        self._closed = False

    def start(self, setup: Callable[[sqlite3.Connection], Any]) -> None:
        """Open the connection in the writer thread and run ``setup`` (migrations) first."""
        self._setup = setup
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    async def submit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` in the next write transaction; return once it is committed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((work, future, loop))
        return await future

    def close(self) -> None:
        """Finish every queued write, commit, and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.ident is not None:  # started (a store that never started has none)
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = connect(self._path)
            if self._setup is not None:
                self._setup(conn)
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(conn)
        finally:
            conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        batches = 0
        while True:
            if self._idle_pending and self._quiet is not None:
                try:
                    first = self._queue.get(timeout=self._quiet)
                except queue.Empty:
                    self._run_idle(conn, busy=False)
                    continue
            else:
                first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(conn, batch)
            if stopping:
                return
            if self._idle is not None:
                self._idle_pending = True  # what was just written may need it
                batches += 1
                if batches % _IDLE_EVERY == 0:
                    self._run_idle(conn, busy=True)

    def _run_idle(self, conn: sqlite3.Connection, *, busy: bool) -> None:
        """One chunk of the idle work, in a transaction of its own."""
        assert self._idle is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            more = self._idle(conn, busy)
            conn.execute("COMMIT")
            self._idle_pending = more or busy
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Not retried until this process restarts: a failing chunk would fail again.
            log.exception("catching up the search index failed; searches scan the log instead")
            self._idle = None
            self._idle_pending = False

    def _commit(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        outcomes: list[tuple[asyncio.AbstractEventLoop, _Outcome]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for work, future, loop in batch:
                conn.execute("SAVEPOINT op")
                try:
                    value = work(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((loop, (future, None, exc)))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((loop, (future, value, None)))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.exception("write batch of %d failed; rolled back", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(loop, (future, None, exc)) for _, future, loop in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for loop, outcome in outcomes:
            by_loop.setdefault(loop, []).append(outcome)
        for loop, items in by_loop.items():
            # A RuntimeError means the waiting loop is gone; the writes are committed anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, items)


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class ReadPool:
    """A few threads, each with its own read-only connection."""

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="promptrun-db-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        # One read transaction per call, so multi-statement reads see one snapshot.
        conn.execute("BEGIN")
        try:
            try:
                return work(conn)
            except sqlite3.OperationalError as exc:
                if "Could not decode to UTF-8" not in str(exc):
                    raise
            # Text that is not UTF-8 (written around the server): read it with the bad bytes
            # replaced rather than fail the whole read. Only this rare path pays for it.
            conn.text_factory = _lenient_text
            try:
                return work(conn)
            finally:
                conn.text_factory = str
        finally:
            conn.execute("COMMIT")

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
