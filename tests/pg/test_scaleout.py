"""Several ``promptrun serve`` processes on one PostgreSQL database serve the same data.

The module's three processes share one schema; each test uses data of its own in it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from promptrun.testing import ServerProcess

from ..server._api import CHAT, OPENAI_MODEL, track_body
from ._cluster import PostgresCluster, run_sql
from .fixtures import DATABASE, schema_url

pytestmark = pytest.mark.anyio

KEY = "pl_scaleout_" + secrets.token_hex(8)


def serve(tmp_path: Path, url: str, *extra: str, key: str = KEY) -> ServerProcess:
    # The last --db wins: ServerProcess names a file first, and the URL overrides it.
    return ServerProcess(tmp_path / "unused.db", api_key=key, args=["--db", url, *extra])


@pytest.fixture(scope="module")
def shared_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """One schema for the module: its processes start once, for every test here."""
    schema = f"scaleout_{os.getpid()}"
    run_sql(postgres_cluster.dsn(DATABASE), f"CREATE SCHEMA {schema}")
    yield schema_url(postgres_cluster, schema)
    run_sql(postgres_cluster.dsn(DATABASE), f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, shared_url: str
) -> Iterator[list[ServerProcess]]:
    """Three server processes on one (new) database, started at once."""
    tmp_path = tmp_path_factory.mktemp("scaleout")
    procs = [serve(tmp_path, shared_url, "--no-sandbox") for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(ServerProcess.start, procs))
    except BaseException:
        for proc in procs:
            proc.close()
        raise
    try:
        yield procs
    finally:
        for proc in procs:
            try:
                assert proc.stop() == 0, proc.output()
            finally:
                proc.close()


async def call(
    http: aiohttp.ClientSession, proc: ServerProcess, method: str, path: str, body: Any = None,
    key: str = KEY,
) -> tuple[int, Any]:  # fmt: skip
    async with http.request(
        method, proc.base_url + path, json=body, headers={"X-API-KEY": key}
    ) as response:
        return response.status, await response.json()


def publish_body(text: str, labels: list[str]) -> dict[str, Any]:
    template = json.loads(json.dumps(CHAT))
    template["messages"][1]["content"][0]["text"] = text
    return {
        "prompt_template": {"prompt_name": "greet"},
        "prompt_version": {"prompt_template": template, "metadata": OPENAI_MODEL},
        "release_labels": labels,
    }


async def test_a_template_published_through_one_process_is_fetched_through_another_at_once(
    servers: list[ServerProcess],
) -> None:
    async with aiohttp.ClientSession() as http:
        for round_ in range(6):
            publisher = servers[round_ % 3]
            status, _ = await call(
                http, publisher, "POST", "/rest/prompt-templates",
                publish_body(f"version {round_ + 1}", ["prod"]),
            )  # fmt: skip
            assert status == 201
            for reader in servers:
                status, got = await call(
                    http, reader, "POST", "/prompt-templates/greet", {"label": "prod"}
                )
                assert status == 200
                assert got["version"] == round_ + 1
                text = got["prompt_template"]["messages"][1]["content"][0]["text"]
                assert text == f"version {round_ + 1}"


async def test_ingestion_through_every_process_loses_and_duplicates_nothing(
    servers: list[ServerProcess],
) -> None:
    client_ids = [f"rec-{i}" for i in range(1200)]
    outcomes: list[tuple[str, str, int]] = []

    async def sender(http: aiohttp.ClientSession, index: int) -> None:
        # Every record goes through two processes at about the same time, as a client's retry
        # through a load balancer would.
        mine = client_ids[index * 400 :] + client_ids[: index * 400]
        for start in range(0, len(mine), 100):
            proc = servers[(index + start // 100) % 3]
            records = [
                {"type": "track", "client_request_id": c, "body": track_body()}
                for c in mine[start : start + 100]
            ]
            status, got = await call(
                http, proc, "POST", "/promptrun/v1/ingest", {"records": records}
            )
            assert status == 200, got
            outcomes.extend(
                (r["client_request_id"], r["status"], r["request_id"]) for r in got["results"]
            )

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(sender(http, i) for i in range(6)))
        stored = {c: i for c, status, i in outcomes if status == "stored"}
        assert len(stored) == len(client_ids)
        assert sum(1 for _, status, _ in outcomes if status == "stored") == len(client_ids)
        assert all(stored[c] == i for c, _, i in outcomes)  # duplicates name the first id
        for proc in servers:
            status, got = await call(http, proc, "GET", "/promptrun/v1/requests?limit=1")
            assert status == 200
            assert got["total"] == len(client_ids)


async def test_a_key_added_by_another_process_is_accepted_by_all_at_once(
    servers: list[ServerProcess], tmp_path: Path, shared_url: str
) -> None:
    newcomer = "pl_newcomer_" + secrets.token_hex(8)
    async with aiohttp.ClientSession() as http:
        status, _ = await call(http, servers[0], "GET", "/prompt-templates", key=newcomer)
        assert status == 401
        with serve(tmp_path, shared_url, "--no-sandbox", key=newcomer):
            for proc in servers:
                status, _ = await call(http, proc, "GET", "/prompt-templates", key=newcomer)
                assert status == 200


ANSWER = {"nodes": [{"name": "out", "type": "value", "configuration": {"value": "hello"},
                     "is_output_node": True}]}  # fmt: skip


async def test_a_workflow_push_reaches_a_client_connected_to_another_process(
    servers: list[ServerProcess],
) -> None:
    runner, listener = servers[0], servers[1]
    async with aiohttp.ClientSession() as http:
        body = {"workflow_name": "w", "definition": ANSWER}
        status, got = await call(http, runner, "POST", "/rest/workflows", body)
        assert status == 201, got
        workflow_id = got["workflow"]["id"]
        channel = f"workflows:{workflow_id}:run:{secrets.token_hex(6)}"
        # The token comes from a third process: every process signs with the database's secret.
        status, got = await call(
            http, servers[2], "POST", f"/ws-token-request-library?capability={channel}"
        )
        assert status == 201, got
        token = got["token_details"]["token"]
        async with http.ws_connect(listener.base_url + "/connection/websocket") as ws:
            await ws.send_str(json.dumps({"id": 1, "connect": {"token": token, "name": "t"}}))
            await ws.send_str(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
            replies: list[Any] = []
            with anyio.fail_after(5):
                while not any(r.get("id") == 2 for r in replies):
                    message = await ws.receive()
                    replies += [json.loads(x) for x in message.data.split("\n") if x.strip()]
            assert all("error" not in r for r in replies), replies
            status, got = await call(
                http, runner, "POST", f"/workflows/{workflow_id}/run",
                {"input_variables": {}, "channel_name_suffix": channel.rsplit(":", 1)[1]},
            )  # fmt: skip
            assert status == 201, got
            with anyio.fail_after(10):
                while True:
                    message = await ws.receive()
                    pushes = [json.loads(x) for x in message.data.split("\n") if x.strip()]
                    push = next((p["push"] for p in pushes if "push" in p), None)
                    if push is not None:
                        break
        assert push["channel"] == channel
        assert "hello" in json.dumps(push["pub"]["data"])
