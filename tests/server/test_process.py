"""``promptrun serve`` as a real process: start-up, keys, signals, crashes, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from promptrun.cli import main
from promptrun.testing import ServerProcess

from ._api import log_body, track_body


def get(proc: ServerProcess, path: str, key: str | None = None) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    headers = {"X-API-KEY": key} if key else {}
    request = urllib.request.Request(proc.base_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_prints_where_it_listens_and_answers_health(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "p.db") as proc:
        assert get(proc, "/health") == (200, {"status": "ok"})
        assert f"listening on {proc.base_url} (db {tmp_path / 'p.db'})" in proc.output()
        assert get(proc, "/prompt-templates", proc.api_key)[0] == 200
        assert "generated API key" not in proc.output()


def test_a_generated_key_is_printed_once_and_keeps_working_after_a_restart(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMPTLAYER_API_KEY"}
    with ServerProcess(tmp_path / "p.db", generate_key=True, env=env) as proc:
        key = proc.api_key
        assert key.startswith("pl_")
        assert len(key) == 3 + 48
        # Once in "generated API key ...", once in the export line that goes with it.
        assert proc.output().count(key) == 2
        assert f"export PROMPTLAYER_BASE_URL={proc.base_url} PROMPTLAYER_API_KEY={key}" in (
            proc.output()
        )
        assert get(proc, "/prompt-templates", key)[0] == 200
        proc.restart()
        assert proc.output().count("generated API key") == 1
        assert proc.output().count(key) == 2
        assert "use the key printed when this database was first served" in proc.output()
        assert get(proc, "/prompt-templates", key)[0] == 200
    assert key not in (tmp_path / "p.db").read_bytes().decode("latin-1")


def test_two_servers_starting_together_on_a_new_file_both_serve_it(tmp_path: Path) -> None:
    key = "pl_test_shared_key"
    procs = [ServerProcess(tmp_path / "p.db", api_key=key, args=["--no-sandbox"]) for _ in "ab"]
    try:
        with ThreadPoolExecutor(len(procs)) as pool:
            for started in [pool.submit(proc.start) for proc in procs]:
                started.result()
        for proc in procs:
            assert get(proc, "/prompt-templates", key)[0] == 200
        assert [proc.stop() for proc in procs] == [0, 0]
    finally:
        for proc in procs:
            proc.close()
    with sqlite3.connect(tmp_path / "p.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        assert versions == sorted(set(versions))  # each migration applied once
        assert conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 1


def test_workspace_keys_are_accepted_and_the_environment_key_only_without_api_key(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PROMPTLAYER_API_KEY": "pl_from_env"}
    args = ["--api-key", "team:pl_team_key", "--no-sandbox"]
    with ServerProcess(tmp_path / "p.db", args=args, env=env) as proc:
        assert get(proc, "/prompt-templates", "pl_from_env")[0] == 401
        assert get(proc, "/prompt-templates", "pl_team_key")[0] == 200
        assert get(proc, "/prompt-templates", "pl_other")[0] == 401
        assert get(proc, "/sandbox/_control")[0] == 404


@pytest.mark.anyio
async def test_sigterm_finishes_requests_in_flight_and_exits_0(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "p.db", args=["--fault-injection"]) as proc:
        headers = {"X-API-KEY": proc.api_key}
        async with aiohttp.ClientSession(headers=headers) as http:
            rule = {"path": "/track-request", "status": None, "delay_ms": 700}
            async with http.post(proc.base_url + "/promptrun/v1/_faults", json={"rules": [rule]}):
                pass
            slow = asyncio.ensure_future(
                http.post(proc.base_url + "/track-request", json=track_body())
            )
            await asyncio.sleep(0.3)
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status == 200
            request_id = (await response.json())["request_id"]
            response.release()
        assert await asyncio.to_thread(proc.process.wait, 20) == 0
        proc.start()
        status, stored = get(proc, f"/promptrun/v1/requests/{request_id}", proc.api_key)
        assert status == 200
        assert stored["id"] == request_id


@pytest.mark.anyio
async def test_acknowledged_writes_survive_kill_9_in_the_middle_of_ingestion(
    tmp_path: Path,
) -> None:
    acknowledged: list[str] = []
    enough = asyncio.Event()
    sent = 0

    async def sender(http: aiohttp.ClientSession, base: str, worker: int) -> None:
        nonlocal sent
        for batch in range(10_000):
            ids = [f"w{worker}-b{batch}-r{i}" for i in range(100)]
            records = [{"type": "track", "client_request_id": c, "body": track_body()} for c in ids]
            sent += len(ids)
            try:
                async with http.post(base + "/promptrun/v1/ingest", json={"records": records}) as r:
                    results = (await r.json())["results"]
            except (TimeoutError, aiohttp.ClientError):
                return
            acknowledged.extend(x["client_request_id"] for x in results if x["status"] == "stored")
            if len(acknowledged) >= 1500:
                enough.set()

    with ServerProcess(tmp_path / "p.db") as proc:
        headers = {"X-API-KEY": proc.api_key}
        async with aiohttp.ClientSession(headers=headers) as http:
            senders = [asyncio.ensure_future(sender(http, proc.base_url, w)) for w in range(4)]
            await asyncio.wait_for(enough.wait(), 60)
            proc.kill()
            await asyncio.gather(*senders)
        assert sent > len(acknowledged)  # some batches were in flight when it died
        proc.start()
        stored = await _stored_items(proc)
        assert {item["client_request_id"] for item in stored} >= set(acknowledged)
        assert len(acknowledged) <= len(stored) <= sent


async def _stored_items(proc: ServerProcess) -> list[dict[str, Any]]:
    """Every stored request, as the request log lists it."""
    stored: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(headers={"X-API-KEY": proc.api_key}) as http:
        while True:
            url = f"{proc.base_url}/promptrun/v1/requests?limit=1000&offset={len(stored)}"
            async with http.get(url) as r:
                items = (await r.json())["items"]
            stored += items
            if len(items) < 1000:
                return stored


async def _stored_tags(proc: ServerProcess) -> dict[int, str]:
    """Every stored request's id and the ``tag`` in its metadata."""
    return {item["id"]: item["metadata"].get("tag") for item in await _stored_items(proc)}


@pytest.mark.anyio
async def test_acknowledged_track_and_log_requests_survive_repeated_kill_9(
    tmp_path: Path,
) -> None:
    acknowledged: dict[int, str] = {}  # server id -> the tag we sent
    sent = 0

    # path, body maker, the status that acknowledges, the key of the id in the answer
    endpoints = [
        ("/track-request", track_body, 200, "request_id"),
        ("/log-request", log_body, 201, "id"),
    ]

    async def sender(
        http: aiohttp.ClientSession, base: str, name: str, enough: asyncio.Event
    ) -> None:
        nonlocal sent
        for i in range(100_000):
            tag = f"{name}-{i}"
            path, make_body, status, id_key = endpoints[i % 2]
            sent += 1
            try:
                async with http.post(base + path, json=make_body(metadata={"tag": tag})) as r:
                    assert r.status == status, await r.text()
                    request_id = (await r.json())[id_key]
            except (TimeoutError, aiohttp.ClientError):
                return  # the server died with this one in flight: not acknowledged
            assert request_id not in acknowledged
            acknowledged[request_id] = tag
            if len(acknowledged) >= enough_at:
                enough.set()

    with ServerProcess(tmp_path / "p.db", args=["--no-sandbox"]) as proc:
        for round_ in range(3):
            enough = asyncio.Event()
            enough_at = len(acknowledged) + 400
            async with aiohttp.ClientSession(headers={"X-API-KEY": proc.api_key}) as http:
                senders = [
                    asyncio.ensure_future(sender(http, proc.base_url, f"r{round_}w{w}", enough))
                    for w in range(6)
                ]
                await asyncio.wait_for(enough.wait(), 60)
                proc.kill()
                await asyncio.gather(*senders)
            proc.start()
            stored = await _stored_tags(proc)
            lost = {rid: tag for rid, tag in acknowledged.items() if stored.get(rid) != tag}
            assert not lost, f"round {round_}: acknowledged but not stored as sent: {lost}"
            assert len(acknowledged) <= len(stored) <= sent
    assert len(acknowledged) >= 1200


def test_a_busy_port_is_reported_and_exits_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "promptrun", "serve", "--port", str(port), "--db",
             str(tmp_path / "p.db"), "--api-key", "k"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert "cannot start" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["serve", "--port", "70000"],
        ["serve", "--api-key", ":nokey"],
        ["serve", "--sandbox-chunks", "0"],
    ],
)
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = int(exc.code or 0)
    assert status == 2
    assert capsys.readouterr().err
