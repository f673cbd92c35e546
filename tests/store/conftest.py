"""The store contract: every test runs once on SQLite and once on PostgreSQL.

``store`` is a started store with two workspaces (``ws`` and ``other``), on a new SQLite file
or a new PostgreSQL schema (tests/pg/fixtures.py starts the throwaway cluster).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import postgres_store, sqlite_store
from promptrun.server.store.base import Store


@dataclass(frozen=True, slots=True)
class Workspaces:
    ws: int
    other: int


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, object]:
    """How to open this test's database: ("sqlite", path) or ("postgres", url)."""
    if store_kind == "postgres":
        return "postgres", request.getfixturevalue("postgres_url")
    return "sqlite", tmp_path / "store.db"


def open_store(where: tuple[str, object]) -> Store:
    kind, target = where
    if kind == "postgres":
        return postgres_store(str(target), min_connections=1, max_connections=4)
    return sqlite_store(Path(str(target)))


@pytest.fixture
async def store(make_store: tuple[str, object]) -> AsyncIterator[Store]:
    opened = open_store(make_store)
    await opened.start()
    await opened.add_keys([("default", hash_key("k-default")), ("other", hash_key("k-other"))])
    yield opened
    await opened.close()


@pytest.fixture
async def spaces(store: Store) -> Workspaces:
    ws = await store.workspace_for_key(hash_key("k-default"))
    other = await store.workspace_for_key(hash_key("k-other"))
    assert ws is not None and other is not None
    return Workspaces(ws, other)
