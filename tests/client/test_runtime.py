"""The runtime's supervision policy, one test a path (see promptrun._runtime's docstring).

A part that fails is contained: the shipper is restarted and loses nothing, a failed template
fetch reaches only its callers, a provider client that cannot be made fails only its call,
and a loop that closes under an open client ships before it goes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import openai
import pytest

from promptrun import AsyncPromptLayer, PromptLayerInternalServerError
from promptrun.testing import RunningServer

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

CHAT = {"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}


def log_kwargs(tag: str) -> dict[str, Any]:
    now = time.time()
    return dict(
        provider="openai", model="gpt-4o", input=CHAT, output=CHAT,
        request_start_time=now - 1, request_end_time=now, tags=[tag],
    )  # fmt: skip


class GarblingServer:
    """promptrun's ingest protocol, except that its first answers are nonsense (``results``
    not objects): what a broken proxy or server could send. Then it stores, by client id."""

    def __init__(self, garbled: int) -> None:
        self.garbled = garbled
        self.stored: dict[str, int] = {}
        self._ids = itertools.count(1)

    async def info(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"server": "promptrun", "features": ["ingest"]})

    async def ingest(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        records = (await request.json())["records"]
        if self.garbled:
            self.garbled -= 1
            return aiohttp.web.json_response({"results": ["not a result object"]})
        results = []
        for record in records:
            cid = record["client_request_id"]
            self.stored.setdefault(cid, next(self._ids))
            results.append(
                {"client_request_id": cid, "status": "stored", "request_id": self.stored[cid]}
            )
        return aiohttp.web.json_response({"results": results})


@asynccontextmanager
async def garbling_server(garbled: int) -> AsyncIterator[tuple[GarblingServer, str]]:
    state = GarblingServer(garbled)
    app = aiohttp.web.Application()
    app.router.add_get("/promptrun/v1/info", state.info)
    app.router.add_post("/promptrun/v1/ingest", state.ingest)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield state, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def shipper_crashes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.levelno == logging.ERROR and "log shipper crashed" in r.getMessage()
    ]  # fmt: skip


async def test_a_crashed_shipper_is_restarted_and_ships_everything_it_was_handed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="promptlayer")
    async with garbling_server(garbled=2) as (server, url):
        pl = AsyncPromptLayer(api_key="pl_k", base_url=url, spool_dir=tmp_path)
        async with pl:
            logged = [await pl.log_request(**log_kwargs(f"r{i}")) for i in range(3)]
            assert await pl.flush(timeout=30)  # through two crashes and two restarts
            after = await pl.log_request(**log_kwargs("after"))  # the same runtime goes on
            assert await pl.flush(timeout=10)
            stats = pl.stats()
    assert set(server.stored) == {r["id"] for r in [*logged, after]}
    assert stats["shipped"] == 4 and stats["pending"] == 0 and stats["dropped"] == 0
    [crash] = shipper_crashes(caplog)  # one ERROR for the streak, with the traceback
    assert crash.exc_info is not None
    assert str(tmp_path) in crash.getMessage()


async def test_a_failed_template_fetch_reaches_only_its_callers(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet", "haiku")
    await probe.faults({"path": "/prompt-templates/greet", "status": 500, "times": 4})
    async with make_client() as pl:
        with pytest.raises(PromptLayerInternalServerError):
            await pl.run("greet", input_variables={"name": "Ada", "topic": "x"})
        other = await pl.run("haiku", input_variables={"subject": "tea"})  # not affected
        again = await pl.run("greet", input_variables={"name": "Ada", "topic": "x"})
        assert await pl.flush(timeout=10)
    stored = {r["client_request_id"] for r in await probe.requests()}
    assert stored >= {other["request_id"], again["request_id"]}


async def test_a_provider_client_that_cannot_be_made_fails_its_call_and_is_tried_again(
    make_client: Factory, probe: Probe, provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await probe.publish("greet", "haiku")
    variables = {"name": "Ada", "topic": "x"}
    async with make_client() as pl:
        monkeypatch.delenv("OPENAI_API_KEY")
        with pytest.raises(openai.OpenAIError, match="OPENAI_API_KEY"):
            await pl.run("greet", input_variables=variables)
        other = await pl.run("haiku", input_variables={"subject": "tea"})  # not affected
        monkeypatch.setenv("OPENAI_API_KEY", "sk-now-set")
        fixed = await pl.run("greet", input_variables=variables)  # nothing was kept
        assert await pl.flush(timeout=10)
    stored = await probe.requests()
    assert sorted(r["status"] for r in stored) == ["ERROR", "SUCCESS", "SUCCESS"]
    assert {other["request_id"], fixed["request_id"]} <= {r["client_request_id"] for r in stored}
    [failed] = [r for r in stored if r["status"] == "ERROR"]
    assert failed["error_type"] == "PROVIDER_AUTH_ERROR"


def test_a_loop_that_closes_under_an_open_client_ships_first_and_the_next_loop_starts_anew(
    provider_env: RunningServer, tmp_path: Path
) -> None:
    pl = AsyncPromptLayer(
        api_key=provider_env.api_key, base_url=provider_env.base_url, spool_dir=tmp_path
    )

    async def never_closed() -> str:
        return (await pl.log_request(**log_kwargs("first")))["id"]

    async def in_a_new_loop() -> str:
        logged = await pl.log_request(**log_kwargs("second"))
        assert await pl.flush(timeout=10)
        await pl.aclose()
        return logged["id"]

    first = asyncio.run(never_closed())  # the loop ends with the client open
    second = asyncio.run(in_a_new_loop())
    stored = asyncio.run(Probe(provider_env).requests())
    assert {first, second} <= {r["client_request_id"] for r in stored}
    assert pl.stats()["pending"] == 0
