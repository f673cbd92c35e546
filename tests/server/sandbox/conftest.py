"""A sandbox mounted the way `promptrun serve` mounts it, served on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from promptrun.server.sandbox import SandboxSettings, create_sandbox_app

from ._harness import CONTROL_KEY, Sandbox


async def _authorize(request: web.Request) -> bool:
    return request.headers.get("X-API-KEY") == CONTROL_KEY


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    root = web.Application()
    root.add_subapp("/sandbox", create_sandbox_app(SandboxSettings(chunks=4), authorize=_authorize))
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Sandbox(str(server.make_url("/sandbox")), http)
    finally:
        await server.close()
