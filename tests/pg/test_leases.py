"""A server process SIGKILLed mid-execution: another process on the database marks the
execution failed, and the client waiting in ``run_workflow`` hears it on its websocket."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from promptrun import AsyncPromptLayer, PromptLayerAPIError
from promptrun.testing import ServerProcess

from ._proxy import FailoverProxy

pytestmark = pytest.mark.anyio

KEY = "pl_leases_" + secrets.token_hex(12)
LEASE = 2.0
NAP = {"nodes": [{"name": "nap", "type": "code", "is_output_node": True,
                  "configuration": {"code": "import time\ntime.sleep(50)\nreturn 'woke'",
                                    "timeout": 55}}]}  # fmt: skip


def serve(tmp_path: Path, url: str) -> ServerProcess:
    args = ["--db", url, "--no-sandbox", "--execution-lease", str(LEASE)]
    return ServerProcess(tmp_path / "unused.db", api_key=KEY, args=args)


async def running(http: aiohttp.ClientSession, proc: ServerProcess) -> list[dict[str, Any]]:
    async with http.get(
        proc.base_url + "/promptrun/v1/workflow-executions?status=RUNNING",
        headers={"X-API-KEY": KEY},
    ) as answer:
        return list((await answer.json())["items"])


async def test_a_killed_processs_execution_fails_and_the_waiting_client_hears_it(
    tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    runner, survivor = serve(tmp_path, postgres_url), serve(tmp_path, postgres_url)
    try:
        runner.start()
        survivor.start()
        async with (
            aiohttp.ClientSession() as http,
            # The run starts on `runner`; the client's websocket is on `survivor`.
            FailoverProxy([runner.base_url, survivor.base_url], survivor.base_url) as proxy,
            AsyncPromptLayer(api_key=KEY, base_url=proxy.base_url, spool_dir=tmp_path) as pl,
        ):
            async with http.post(
                runner.base_url + "/rest/workflows",
                json={"workflow_name": "nap", "definition": NAP},
                headers={"X-API-KEY": KEY},
            ) as published:
                assert published.status == 201
            outcome: dict[str, Any] = {}

            async def wait_for_it() -> None:
                try:
                    await pl.run_workflow("nap", timeout=60)
                except PromptLayerAPIError as exc:
                    outcome["error"] = exc
                    outcome["at"] = time.monotonic()

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_it)
                with anyio.fail_after(20):
                    while True:
                        if await running(http, survivor):
                            break
                        await anyio.sleep(0.05)
                runner.kill()
                killed_at = time.monotonic()
        error = outcome["error"]
        waited = outcome["at"] - killed_at
        print(f"the client heard of the failure {waited:.2f} s after the kill (lease {LEASE} s)")
        assert "server process running it stopped before it finished" in error.message
        assert "nap: FAILED" in error.message
        assert waited < 4 * LEASE  # not the 60 s timeout
        # Pushed on the websocket it waited on: it never fell back to polling.
        assert not [r for r in caplog.records if "polling execution" in r.getMessage()]
        async with aiohttp.ClientSession() as http:
            assert await running(http, survivor) == []
    finally:
        for proc in (runner, survivor):
            proc.close()
