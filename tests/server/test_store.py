"""The SQLite driver: first-time setup, group commit, reads alongside writes.

The store's operations are tested on both drivers in tests/store; here, what only
SQLite does."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import sqlite_store
from promptrun.server.store.base import NewVersion, RequestRow, Store
from promptrun.server.store.queries.migrate import migrations

MIGRATIONS = migrations("sqlite")

pytestmark = pytest.mark.anyio


def row(client_id: str | None = None, size: int = 200) -> RequestRow:
    return RequestRow(
        kind="track",
        client_request_id=client_id,
        provider="openai",
        model="gpt-4o-mini",
        function_name="openai.chat.completions.create",
        start_time=1.0,
        end_time=2.0,
        body='{"pad": "' + "x" * size + '"}',
        blueprint="{}",
    )


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = sqlite_store(tmp_path / "s.db")
    await store.start()
    await store.add_keys([("default", hash_key("k"))])
    yield store  # type: ignore[misc]
    await store.close()


async def test_a_new_database_is_at_the_latest_schema_version(store: Store, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == len(
            MIGRATIONS
        )
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    first = sqlite_store(tmp_path / "s.db")
    await first.start()
    await first.add_keys([("default", hash_key("k"))])
    workspace = await first.workspace_for_key(hash_key("k"))
    assert workspace is not None
    await first.insert_request(workspace, row())
    await first.close()
    again = sqlite_store(tmp_path / "s.db")
    await again.start()
    try:
        assert (await again.list_requests(workspace, limit=10, offset=0, prompt_name=None))[1] == 1
    finally:
        await again.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_stores_starting_together_on_a_new_file_migrate_it_once(tmp_path: Path) -> None:
    # Threads with their own connections lock the file as separate processes would.
    def start_and_stop() -> None:
        async def run() -> None:
            store = sqlite_store(tmp_path / "s.db")
            await store.start()
            await store.add_keys([("default", hash_key("k"))])
            await store.close()

        asyncio.run(run())

    with ThreadPoolExecutor(6) as pool:
        for done in [pool.submit(start_and_stop) for _ in range(6)]:
            done.result()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        assert conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 1


class _Said(logging.Handler):
    """Sets an event when a log record containing ``text`` is emitted (from any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def store_log() -> Iterator[logging.Logger]:
    logger = logging.getLogger("promptrun.server.store")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(level)


def test_a_store_opening_a_new_file_while_another_sets_it_up_waits_instead_of_failing(
    tmp_path: Path, store_log: logging.Logger
) -> None:
    # What a second store meets when the first holds the new file's write lock: SQLite refuses
    # the switch to WAL at once, without its busy timeout.
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    said = _Said("busy while switching to WAL")
    store_log.addHandler(said)
    outcome: list[BaseException | None] = []

    def start_and_stop() -> None:
        async def run() -> None:
            store = sqlite_store(tmp_path / "s.db")
            await store.start()
            await store.close()

        try:
            asyncio.run(run())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    starter = threading.Thread(target=start_and_stop)
    try:
        starter.start()
        while starter.is_alive() and not said.event.wait(0.05):
            pass
        assert said.event.is_set(), f"the store did not wait for the lock: {outcome}"
        holder.execute("COMMIT")
        starter.join(60)
    finally:
        store_log.removeHandler(said)
        holder.close()
    assert outcome == [None]
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == len(
            MIGRATIONS
        )


async def test_concurrent_writes_share_transactions_and_all_commit(store: Store) -> None:
    workspace = await store.workspace_for_key(hash_key("k"))
    assert workspace is not None
    ids = await asyncio.gather(*(store.insert_request(workspace, row()) for _ in range(500)))
    assert len(set(ids)) == 500
    assert (await store.list_requests(workspace, limit=1, offset=0, prompt_name=None))[1] == 500


async def test_a_failing_write_does_not_undo_the_others_in_its_batch(store: Store) -> None:
    workspace = await store.workspace_for_key(hash_key("k"))
    assert workspace is not None
    bad = row()
    bad.group_id = 404
    results = await asyncio.gather(
        store.insert_request(workspace, row()),
        store.insert_request(workspace, bad),
        store.insert_request(workspace, row()),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["int", "NotFoundError", "int"]
    assert (await store.list_requests(workspace, limit=1, offset=0, prompt_name=None))[1] == 2


async def test_reads_complete_while_a_large_write_batch_is_running(store: Store) -> None:
    workspace = await store.workspace_for_key(hash_key("k"))
    assert workspace is not None
    await store.publish(
        workspace,
        NewVersion(prompt_name="t", prompt_template={"type": "chat", "messages": []}, metadata={}),
    )
    items = [row(f"c{i}", size=2000) for i in range(12_000)]
    write = asyncio.ensure_future(store.ingest(workspace, items))
    reads = 0
    while not write.done() and reads < 5:
        _, total = await store.list_requests(workspace, limit=1, offset=0, prompt_name=None)
        assert total in (0, len(items))  # a read sees all of a batch or none of it
        reads += 1
        await asyncio.sleep(0)
    finished_first = write.done()
    results = await write
    assert reads == 5 and not finished_first  # five reads answered while the batch was written
    assert {r.status for r in results} == {"stored"}
