"""Nothing lost: the spool's bound, a client killed mid-shipping, counters at shutdown."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import anyio
import pytest

from .._clients import Factory, Probe, spooled, start_then_kill_9

pytestmark = pytest.mark.anyio

CHAT = {
    "type": "chat",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 200}]}],
}


async def test_a_full_spool_drops_its_oldest_records_counted_and_warned(
    make_client: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "bounded"
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with make_client(
            base_url="http://127.0.0.1:9", spool_dir=spool, spool_max_bytes=8192,
            shutdown_timeout=0.2,
        ) as pl:  # fmt: skip
            for _ in range(200):
                await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
            await pl.flush(timeout=1)
    stats = pl.stats()
    assert stats["dropped"] > 0
    kept = len(spooled(spool))
    assert kept + stats["dropped"] == 200  # every record is on disk or counted as dropped
    assert stats["pending"] == kept
    segments = list(spool.rglob("*.seg"))
    assert segments and sum(p.stat().st_size for p in segments) <= 8192 * 1.25
    assert any("dropped the" in r.getMessage() for r in caplog.records)


async def test_closing_with_records_not_shipped_logs_the_counters(
    make_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with make_client(base_url="http://127.0.0.1:9", shutdown_timeout=0.2) as pl:
            await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
    [closing] = [r for r in caplog.records if "not shipped yet" in r.getMessage()]
    assert "1 log record(s) of this client not shipped yet" in closing.getMessage()
    assert "'spooled': 1" in closing.getMessage()
    assert not any("refused by the server" in r.getMessage() for r in caplog.records)


async def test_closing_after_a_refused_record_says_refused_and_not_pending(
    make_client: Factory, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.faults(
        {"path": "/promptrun/v1/ingest", "status": 400, "times": None},
        {"path": "/log-request", "status": 400, "times": None},
    )
    try:
        with caplog.at_level(logging.WARNING, logger="promptlayer"):
            async with make_client(shutdown_timeout=2) as pl:
                await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
                assert not await pl.flush(timeout=5)  # settled, but not on the server
    finally:
        await probe.clear_faults()
    assert pl.stats()["failed"] == 1 and pl.stats()["pending"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert not any("not shipped" in m for m in messages)
    [refused] = [m for m in messages if "refused by the server" in m]
    assert "1 log record(s) were refused by the server" in refused


async def test_records_spooled_before_a_kill_9_are_shipped_by_the_next_client(
    make_client: Factory, probe: Probe, tmp_path: Path
) -> None:
    spool = tmp_path / "killed"
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from promptrun import AsyncPromptLayer
        chat = {{"type": "chat", "messages": []}}
        async def main():
            pl = AsyncPromptLayer(api_key={probe.srv.api_key!r}, base_url={probe.srv.base_url!r},
                                  spool_dir={str(spool)!r})
            ids = [(await pl.log_request("openai", "m", chat, chat, 1.0, 2.0))["id"]
                   for _ in range(30)]
            await pl.flush(timeout=3)  # the server answers 503: everything goes to the spool
            print(" ".join(ids), flush=True)
            await asyncio.sleep(60)  # killed here, mid-life
        asyncio.run(main())
        """
    )
    ids = await anyio.to_thread.run_sync(start_then_kill_9, code)
    assert len(ids) == 30
    assert len(spooled(spool)) == 30
    await probe.clear_faults()
    async with make_client(spool_dir=spool) as pl:
        assert await pl.flush(timeout=10)
    stored = {r["client_request_id"] for r in await probe.requests()}
    assert stored == set(ids)
