"""Handing the shipper from its loop to another thread (interpreter exit): never two shippers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from promptrun._http import ApiTransport
from promptrun.actors.shipper import LogShipper
from promptrun.wire.ingest import LogRecord

pytestmark = pytest.mark.anyio


class Stub:
    """A promptrun-shaped server that holds its protocol answer until told to give it."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()
        self.events: list[str] = []

    async def info(self, request: web.Request) -> web.Response:
        self.asked.set()
        await self.answer.wait()
        return web.json_response({"features": ["ingest"]})

    async def ingest(self, request: web.Request) -> web.Response:
        records = (await request.json())["records"]
        self.events.append(f"ingest {len(records)}")
        results = [
            {"client_request_id": r["client_request_id"], "status": "stored"} for r in records
        ]
        return web.json_response({"results": results})


@pytest.fixture
async def stub() -> AsyncIterator[tuple[Stub, str]]:
    s = Stub()
    app = web.Application()
    app.router.add_get("/promptrun/v1/info", s.info)
    app.router.add_post("/promptrun/v1/ingest", s.ingest)
    server = TestServer(app)
    await server.start_server()
    try:
        yield s, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_a_handover_waits_for_the_shipment_the_loop_was_preparing(
    stub: tuple[Stub, str], tmp_path: Path
) -> None:
    server, url = stub
    loop = asyncio.new_event_loop()  # the shipper's loop, in a thread of its own (a portal)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    transport = ApiTransport(url, "key", 5.0)
    shipper = LogShipper(
        transport, spool_dir=tmp_path, spool_max_bytes=1 << 20, channel_size=100, batch_size=100
    )

    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        await transport.open()
        tasks.append(loop.create_task(shipper.run()))

    def inside(coro: Any) -> asyncio.Future[Any]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    try:
        await inside(start())
        for i in range(5):
            data = shipper.encode(LogRecord(client_request_id=f"req_{i}", body={}))
            shipper.submit_threadsafe(loop, data)
        await server.asked.wait()  # the loop is asking what the server supports...
        handover = inside(shipper.quiesce())  # ...when another thread wants the shipper
        handover.add_done_callback(lambda _: server.events.append("handed over"))
        await asyncio.sleep(0)
        server.answer.set()
        assert await handover
        # The loop finished the shipment it had started, then let go; nothing is left over
        # for the new owner to send again.
        assert server.events == ["ingest 5", "handed over"]
        shipper.take_over()
        assert shipper.spool.pending() == 0
    finally:
        await inside(transport.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
