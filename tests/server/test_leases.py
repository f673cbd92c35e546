"""Execution leases: an execution whose server process died is marked failed and pushed;
cancelling reaches the process that runs an execution."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.store import postgres_store, sqlite_store
from promptrun.server.store.base import Store

from ._api import KEY, Api
from .test_workflows_ws import command, receive, token

pytestmark = pytest.mark.anyio

LEASE = 0.3
SLOW = {"nodes": [{"name": "nap", "type": "code", "is_output_node": True,
                   "configuration": {"code": "import time\ntime.sleep(2.5)\nreturn 'woke'",
                                     "timeout": 30}}]}  # fmt: skip
FAST = {"nodes": [{"name": "out", "type": "value", "configuration": {"value": 1},
                   "is_output_node": True}]}  # fmt: skip


@pytest.fixture
def leased(config: ServerConfig) -> ServerConfig:
    return ServerConfig(**{**_fields(config), "execution_lease": LEASE})


def _fields(config: ServerConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


@asynccontextmanager
async def serving(config: ServerConfig) -> AsyncIterator[Api]:
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Api(client)


@asynccontextmanager
async def side_store(config: ServerConfig) -> AsyncIterator[Store]:
    """The same database, opened the way another server process would."""
    if config.database_url is not None:
        store = postgres_store(config.database_url, min_connections=1, max_connections=2)
    else:
        store = sqlite_store(config.db_path)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def publish(api: Api, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    body = {"workflow_name": name, "definition": definition}
    return (await api.ok("POST", "/rest/workflows", body))["workflow"]  # type: ignore[no-any-return]


async def status_of(api: Api, execution_id: int) -> dict[str, Any]:
    got = await api.ok("GET", f"/promptrun/v1/workflow-executions/{execution_id}")
    return got  # type: ignore[no-any-return]


async def until_done(api: Api, execution_id: int, seconds: float = 10) -> dict[str, Any]:
    with anyio.fail_after(seconds):
        while True:
            got = await status_of(api, execution_id)
            if got["status"] != "RUNNING":
                return got
            await anyio.sleep(0.02)


async def test_an_execution_left_running_by_a_dead_process_is_failed_and_pushed(
    leased: ServerConfig,
) -> None:
    async with serving(leased) as api, side_store(leased) as store:
        flow = await publish(api, "orphan", FAST)
        channel = f"workflows:{flow['id']}:run:orphan1"
        async with api.client.ws_connect("/connection/websocket") as ws:
            await command(ws, {"id": 1, "connect": {"token": await token(api, channel)}})
            await command(ws, {"id": 2, "subscribe": {"channel": channel}})
            ws_id = await store.workspace_for_key(_digest_of(api))
            assert ws_id is not None
            version = await store.get_workflow(ws_id, "orphan")
            # What a process killed mid-run leaves: RUNNING, its lease ended a while ago.
            execution_id = await store.create_workflow_execution(
                ws_id, version, input_variables={}, metadata={}, return_all_outputs=False,
                lease_owner="a-process-that-died", lease_expires=time.time() - 5,
                channel=channel,
            )  # fmt: skip
            (push,) = await receive(ws)
        data = json.loads(push["push"]["pub"]["data"]["data"])
        assert data["workflow_version_execution_id"] == execution_id
        out = data["final_output"]["out"]
        assert out["status"] == "FAILED" and out["is_output_node"] is True
        assert "server process running it stopped before it finished" in out["error_message"]
        stored = await status_of(api, execution_id)
        assert stored["status"] == "FAILED"
        assert stored["error_message"] == out["error_message"]
        status, answer = await api.call(
            "GET",
            f"/workflow-version-execution-results?workflow_version_execution_id={execution_id}",
        )
        assert status == 200 and answer["out"]["status"] == "FAILED"


def _digest_of(api: Api) -> str:
    from promptrun.server._state import KEYRING

    return api.client.app[KEYRING].digest(KEY)  # type: ignore[index]


async def test_a_running_execution_keeps_its_lease_and_finishes(leased: ServerConfig) -> None:
    async with serving(leased) as api:
        flow = await publish(api, "slow", SLOW)
        started = await api.ok("POST", f"/workflows/{flow['id']}/run", {})
        execution_id = started["workflow_version_execution_id"]
        done = await until_done(api, execution_id)
        assert (done["status"], done["error_message"]) == ("SUCCESS", None)


async def test_a_sqlite_server_restarted_fails_what_it_was_running(
    leased: ServerConfig,
) -> None:
    if leased.database_url is not None:
        pytest.skip("one process per SQLite file: PostgreSQL's processes go by the lease")
    # A lease far from its end: only the restart itself can tell that its process is gone.
    config = ServerConfig(**{**_fields(leased), "execution_lease": 3600.0})
    async with serving(config) as api:
        await publish(api, "restart", FAST)
    async with side_store(config) as store:
        workspace = next(k.workspace for k in await store.list_keys(None))
        version = await store.get_workflow(workspace, "restart")
        execution_id = await store.create_workflow_execution(
            workspace, version, input_variables={}, metadata={}, return_all_outputs=False,
            lease_owner="the-process-before", lease_expires=time.time() + 3600,
        )  # fmt: skip
    async with serving(config) as api:
        done = await until_done(api, execution_id)
        assert done["status"] == "FAILED"
        assert "the server restarted while it was running" in done["error_message"]


async def test_cancel_reaches_the_process_running_the_execution(config: ServerConfig) -> None:
    if config.database_url is None:
        pytest.skip("one process per SQLite file")
    async with serving(config) as runner, serving(config) as other:
        flow = await publish(runner, "cancel-me", SLOW)
        started = await runner.ok("POST", f"/workflows/{flow['id']}/run", {})
        execution_id = started["workflow_version_execution_id"]
        answer = await other.ok("POST", f"/promptrun/v1/workflow-executions/{execution_id}/cancel")
        assert answer == {"success": True, "cancelled": True}
        done = await until_done(other, execution_id, seconds=2)
        assert (done["status"], done["error_message"]) == ("FAILED", "cancelled on request")
        again = await other.ok("POST", f"/promptrun/v1/workflow-executions/{execution_id}/cancel")
        assert again == {"success": True, "cancelled": False}


async def test_a_live_processs_execution_is_not_failed_by_another_process(
    leased: ServerConfig,
) -> None:
    if leased.database_url is None:
        pytest.skip("one process per SQLite file")
    async with serving(leased) as runner, serving(leased) as watcher:
        flow = await publish(runner, "watched", SLOW)
        started = await runner.ok("POST", f"/workflows/{flow['id']}/run", {})
        # 2.5 s of work is eight leases: renewed all along, so the watcher leaves it alone.
        done = await until_done(watcher, started["workflow_version_execution_id"])
        assert (done["status"], done["error_message"]) == ("SUCCESS", None)


NAP = {"nodes": [{"name": "nap", "type": "code", "is_output_node": True,
                  "configuration": {"code": "import time\ntime.sleep(50)\nreturn 'woke'",
                                    "timeout": 55}}]}  # fmt: skip


async def test_a_sqlite_server_killed_mid_run_and_restarted_fails_it_for_the_waiting_client(
    tmp_path: Path,
) -> None:
    from promptrun import AsyncPromptLayer, PromptLayerAPIError
    from promptrun.testing import ServerProcess

    proc = ServerProcess(tmp_path / "killed.db", args=["--no-sandbox"])
    headers = {"X-API-KEY": proc.api_key}
    try:
        proc.start()
        outcome: dict[str, Any] = {}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            AsyncPromptLayer(
                api_key=proc.api_key, base_url=proc.base_url, spool_dir=tmp_path
            ) as pl,
        ):
            body = {"workflow_name": "nap", "definition": NAP}
            async with http.post(proc.base_url + "/rest/workflows", json=body) as published:
                assert published.status == 201

            async def wait_for_it() -> None:
                try:
                    await pl.run_workflow("nap", timeout=60)
                except PromptLayerAPIError as exc:
                    outcome["error"] = exc

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_it)
                path = "/promptrun/v1/workflow-executions?status=RUNNING"
                with anyio.fail_after(20):
                    while True:
                        async with http.get(proc.base_url + path) as answer:
                            if (await answer.json())["items"]:
                                break
                        await anyio.sleep(0.05)
                proc.kill()
                await anyio.to_thread.run_sync(proc.start)  # same port, same file
        message = outcome["error"].message
        assert "nap: FAILED" in message and "the server restarted while it was running" in message
        assert "run it again" in message
    finally:
        proc.close()
