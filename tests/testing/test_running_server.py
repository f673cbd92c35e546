"""promptrun.testing: the in-process server helper."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from promptrun.testing import RunningServer, running_server, sandbox_path


def get_json(url: str, key: str | None = None, **headers: str) -> object:
    if key:
        headers["X-API-KEY"] = key
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read())


def test_running_server_serves_until_its_block_ends() -> None:
    with running_server() as srv:
        assert get_json(srv.base_url + "/health") == {"status": "ok"}
        assert get_json(srv.base_url + "/prompt-templates", srv.api_key)
    with pytest.raises(OSError):
        urllib.request.urlopen(srv.base_url + "/health", timeout=2)


def test_sandbox_urls_point_at_the_mounted_fakes(server: RunningServer) -> None:
    assert server.sandbox_url("openai") == server.base_url + "/sandbox/openai/v1"
    models = get_json(server.sandbox_url("openai") + "/models", Authorization="Bearer sk-x")
    assert isinstance(models, dict)
    assert models.get("data")
    with pytest.raises(ValueError, match="known: "):
        sandbox_path("cohere")


def test_configured_keys_and_a_database_path_are_used(tmp_path: Path) -> None:
    db = tmp_path / "kept.db"
    with running_server(api_keys=("a:pl_a", "b:pl_b"), db_path=db) as srv:
        assert srv.api_key == "pl_a"
        assert srv.db_path == db
        assert get_json(srv.base_url + "/prompt-templates", "pl_b")
    assert db.exists()
