"""Fault injection: chosen paths fail a number of times, with a status, a delay, Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app

from ._api import KEY, OTHER_KEY, Api, track_body

pytestmark = pytest.mark.anyio

FAULTS = "/promptrun/v1/_faults"


async def test_a_rule_fails_its_path_the_given_number_of_times_then_stops(api: Api) -> None:
    await api.ok("POST", FAULTS, {"rules": [{"path": "/track-request", "status": 503, "times": 2}]})
    statuses = [(await api.call("POST", "/track-request", track_body()))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    state = await api.ok("GET", FAULTS)
    assert state["rules"] == []
    assert state["hits"] == {"/track-request": 2}
    assert (await api.requests())["total"] == 1


async def test_retry_after_is_sent_as_a_header(api: Api) -> None:
    await api.ok(
        "POST", FAULTS, {"rules": [{"path": "/prompt-templates", "status": 429, "retry_after": 2}]}
    )
    async with api.client.post(
        "/prompt-templates/x", json={}, headers={"X-API-KEY": KEY}
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert "fault injected" in (await response.json())["message"]


async def test_a_rule_without_a_status_only_delays(api: Api) -> None:
    rules = [
        {"path": "/promptrun/v1/requests", "status": None, "delay_ms": 1},
        {"path": "/track-request", "status": None, "delay_ms": 600_000},
    ]
    await api.ok("POST", FAULTS, {"rules": rules})
    status, _ = await api.call("GET", "/promptrun/v1/requests")  # delayed, then answered
    assert status == 200
    held = asyncio.ensure_future(api.call("POST", "/track-request", track_body()))
    try:
        await api.ok("GET", "/health", key=None)  # answered while the other is held
        assert not held.done()
    finally:
        held.cancel()
        with contextlib.suppress(BaseException):
            await held
    assert (await api.ok("GET", FAULTS))["hits"] == {
        "/promptrun/v1/requests": 1,
        "/track-request": 1,
    }


async def test_faults_apply_only_to_requests_of_the_workspace_that_set_them(api: Api) -> None:
    await api.ok("POST", FAULTS, {"rules": [{"path": "/track-request", "times": None}]})

    other = await api.call("POST", "/track-request", track_body(), key=OTHER_KEY)
    other_in_body = await api.call(
        "POST", "/track-request", track_body(api_key=OTHER_KEY), key=None
    )
    anonymous = await api.call("POST", "/track-request", track_body(), key=None)
    own = await api.call("POST", "/track-request", track_body())
    own_in_body = await api.call("POST", "/track-request", track_body(api_key=KEY), key=None)

    assert (other[0], other_in_body[0], anonymous[0]) == (200, 200, 401)
    assert (own[0], own_in_body[0]) == (503, 503)
    assert (await api.ok("GET", FAULTS, key=OTHER_KEY))["rules"] == []
    assert (await api.ok("GET", FAULTS))["hits"] == {"/track-request": 2}


async def test_a_workspace_cannot_see_or_clear_another_workspaces_faults(api: Api) -> None:
    await api.ok("POST", FAULTS, {"rules": [{"path": "/track-request", "times": None}]})

    seen = await api.ok("GET", FAULTS, key=OTHER_KEY)
    await api.ok("DELETE", FAULTS, key=OTHER_KEY)

    assert seen["rules"] == []
    assert len((await api.ok("GET", FAULTS))["rules"]) == 1
    assert (await api.call("POST", "/track-request", track_body()))[0] == 503


async def test_a_workspace_holds_a_bounded_number_of_fault_rules(api: Api) -> None:
    rules = [{"path": f"/x{i}", "times": None} for i in range(1000)]
    await api.ok("POST", FAULTS, {"rules": rules})
    status, answer = await api.call("POST", FAULTS, {"rules": [{"path": "/y"}]})
    assert status == 400
    assert "1000" in answer["message"]


async def test_rules_match_by_prefix_and_unlimited_rules_keep_firing(api: Api) -> None:
    await api.ok("POST", FAULTS, {"rules": [{"path": "/library-track", "times": None}]})
    for path in ("/library-track-score", "/library-track-metadata", "/library-track-score"):
        assert (await api.call("POST", path, {}))[0] == 503
    state = await api.ok("GET", FAULTS)
    assert state["hits"] == {"/library-track-score": 2, "/library-track-metadata": 1}
    assert len(state["rules"]) == 1


async def test_delete_clears_rules_and_counts(api: Api) -> None:
    await api.ok("POST", FAULTS, {"rules": [{"path": "/track-request", "times": None}]})
    await api.call("POST", "/track-request", track_body())
    cleared = await api.ok("DELETE", FAULTS)
    assert cleared["rules"] == []
    assert cleared["hits"] == {}
    assert (await api.call("POST", "/track-request", track_body()))[0] == 200


async def test_the_faults_endpoint_needs_a_key_and_a_valid_rule(api: Api) -> None:
    assert (await api.call("GET", FAULTS, key=None))[0] == 401
    status, answer = await api.call("POST", FAULTS, {"rules": [{"path": "/x", "status": 42}]})
    assert status == 400
    assert "status" in answer["message"]


async def test_without_fault_injection_there_is_no_faults_endpoint(tmp_path: Path) -> None:
    config = ServerConfig(db_path=tmp_path / "db", api_keys=(KEY,), sandbox=False)
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        status, _ = await Api(client).call("POST", FAULTS, {"rules": []})
    assert status == 404
