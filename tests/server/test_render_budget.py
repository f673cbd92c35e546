"""The server renders templates for callers off its event loop, under its render budget."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun._render_threads import RENDER_THREADS, RenderBusyError, run_rendering
from promptrun.server.app import ServerConfig, create_app

from ._api import KEY, Api

pytestmark = pytest.mark.anyio

LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
WIDE = "{{ x|center(999999999) }}"


def jinja(text: str) -> dict[str, Any]:
    return {
        "type": "chat",
        "messages": [
            {
                "role": "user",
                "template_format": "jinja2",
                "content": [{"type": "text", "text": text}],
            }
        ],
    }


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = ServerConfig(
        db_path=tmp_path / "promptrun.db",
        api_keys=(KEY,),
        generate_key=False,
        sandbox=False,
        render_timeout=0.5,
        render_max_chars=1_000_000,
    )
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Api(client)


async def test_a_template_that_runs_away_is_a_422_naming_the_time_budget(api: Api) -> None:
    await api.publish("loops", jinja(LOOPS))

    status, answer = await api.fetch("loops", input_variables={})

    assert status == 422
    assert answer["message"].startswith("prompt template 'loops' (version 1): rendering took")
    assert "time budget of 0.5 s" in answer["message"]


async def test_a_template_that_builds_too_much_is_a_422_naming_the_size_budget(api: Api) -> None:
    await api.publish("wide", jinja(WIDE))

    status, answer = await api.fetch("wide", input_variables={"x": "a"})

    assert status == 422
    assert "prompt template 'wide'" in answer["message"]
    assert "size budget of 1,000,000 characters" in answer["message"]


async def test_the_server_keeps_answering_while_a_hostile_template_renders(api: Api) -> None:
    await api.publish("loops", jinja(LOOPS))
    hostile = asyncio.ensure_future(api.fetch("loops", input_variables={}))
    answered_meanwhile = 0
    while not hostile.done():
        status, _ = await api.call("GET", "/health", key=None)
        assert status == 200
        if not hostile.done():
            answered_meanwhile += 1
    assert (await hostile)[0] == 422
    assert answered_meanwhile > 0


async def test_a_template_that_fits_the_budget_renders_as_before(api: Api) -> None:
    await api.publish("ok", jinja("{% for n in names %}{{ n|upper }} {% endfor %}"))
    status, answer = await api.fetch("ok", input_variables={"names": ["ada", "alan"]})
    assert status == 200
    assert answer["prompt_template"]["messages"][0]["content"][0]["text"] == "ADA ALAN "


async def test_when_every_render_thread_stays_busy_a_rendering_fails_fast_with_busy() -> None:
    release = threading.Event()
    started = [
        asyncio.ensure_future(run_rendering(release.wait, 30)) for _ in range(RENDER_THREADS)
    ]
    await asyncio.sleep(0)
    try:
        with pytest.raises(RenderBusyError, match="retry"):
            await run_rendering(int, "1", start_wait=0.05)
    finally:
        release.set()
        assert all(await asyncio.gather(*started))
    assert await run_rendering(int, "7", start_wait=1.0) == 7
