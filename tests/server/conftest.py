"""Server tests: the app under aiohttp's TestServer on a loopback port, two workspaces, each
test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app

from ._api import KEY, OTHER_KEY, Api


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test through the HTTP API runs on both stores."""
    return str(request.param)


@pytest.fixture
def config(tmp_path: Path, store_kind: str, request: pytest.FixtureRequest) -> ServerConfig:
    database_url = request.getfixturevalue("postgres_url") if store_kind == "postgres" else None
    return ServerConfig(
        db_path=tmp_path / "promptrun.db",
        database_url=database_url,
        api_keys=(KEY, f"other:{OTHER_KEY}"),
        generate_key=False,
        sandbox=False,
        fault_injection=True,
        max_body_bytes=1024 * 1024,
        max_record_bytes=2 * 1024 * 1024,
    )


@pytest.fixture
async def api(config: ServerConfig) -> AsyncIterator[Api]:
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Api(client)
