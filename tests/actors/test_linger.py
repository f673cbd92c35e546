"""The shipper's batching linger: it adapts to a sequential caller on a batching server, and
never holds back flush() or a stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from promptrun._http import ApiTransport
from promptrun.actors.shipper import LogShipper
from promptrun.wire.ingest import LogRecord

pytestmark = pytest.mark.anyio


class Ingest:
    """A promptrun-shaped server that stores every record and counts the requests."""

    def __init__(self, expect: int = 20) -> None:
        self.batches: list[list[str]] = []
        self.expect = expect
        self.all_in = anyio.Event()  # ``expect`` records stored

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response({"features": ["ingest"]})

    async def ingest(self, request: web.Request) -> web.Response:
        records = (await request.json())["records"]
        self.batches.append([r["client_request_id"] for r in records])
        if len(self.stored) >= self.expect:
            self.all_in.set()
        results = [
            {"client_request_id": r["client_request_id"], "status": "stored"} for r in records
        ]
        return web.json_response({"results": results})

    @property
    def stored(self) -> list[str]:
        return [cid for batch in self.batches for cid in batch]


@pytest.fixture
async def ingest() -> AsyncIterator[tuple[Ingest, ApiTransport]]:
    """The stub server, and an open transport to it."""
    server = Ingest()
    app = web.Application()
    app.router.add_get("/promptrun/v1/info", server.info)
    app.router.add_post("/promptrun/v1/ingest", server.ingest)
    running = TestServer(app)
    await running.start_server()
    transport = ApiTransport(str(running.make_url("")).rstrip("/"), "key", 5.0)
    await transport.open()
    try:
        yield server, transport
    finally:
        await transport.close()
        await running.close()


def shipper_for(transport: ApiTransport, folder: Path, **linger: float) -> LogShipper:
    return LogShipper(
        transport,
        spool_dir=folder,
        spool_max_bytes=1 << 20,
        channel_size=100,
        batch_size=500,
        **linger,
    )


def record(shipper: LogShipper, i: int) -> bytes:
    return shipper.encode(LogRecord(client_request_id=f"req_{i}", body={}))


async def test_a_sequential_callers_records_share_requests_on_a_batching_server(
    ingest: tuple[Ingest, ApiTransport], tmp_path: Path
) -> None:
    server, transport = ingest
    # One record every 80 ms, longer than the 50 ms base linger: with a fixed linger each
    # would go out in a request of its own.
    shipper = shipper_for(transport, tmp_path)
    async with anyio.create_task_group() as tg:
        await tg.start(shipper.run)
        for i in range(20):
            shipper.submit_encoded(record(shipper, i))
            await anyio.sleep(0.08)
        with anyio.fail_after(30):
            await server.all_in.wait()  # no flush(): the linger alone ships them
        shipper.stop()
    shipper.release()
    assert server.stored == [f"req_{i}" for i in range(20)]  # in order, each once
    assert len(server.batches) <= 10
    assert max(len(b) for b in server.batches) > 1


async def test_flush_and_stop_ship_at_once_however_long_the_linger(
    ingest: tuple[Ingest, ApiTransport], tmp_path: Path
) -> None:
    server, transport = ingest
    shipper = shipper_for(transport, tmp_path, linger=3600, linger_max=3600)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(shipper.run)
            for i in range(3):
                shipper.submit_encoded(record(shipper, i))
            with anyio.fail_after(20):  # an hour's linger: only flush() can ship these
                assert await shipper.flush(None)
            assert server.stored == ["req_0", "req_1", "req_2"]
            shipper.submit_encoded(record(shipper, 3))
            shipper.stop()
            assert shipper.stopped is not None
            with anyio.fail_after(20):
                await shipper.stopped.wait()
        # A stopped shipper leaves what it did not ship in the spool, for shutdown's drain.
        assert shipper.spool.pending() == 1
        with anyio.fail_after(20):
            await shipper.drain(transport)
        assert server.stored == ["req_0", "req_1", "req_2", "req_3"]
    finally:
        shipper.release()
