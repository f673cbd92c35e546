"""Delivery through outages: background replay, a patient flush(), honest stats(), a spool
that cannot be written, and records written ahead so that kill -9 loses none."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from .conftest import Factory, Probe, spooled, start_then_kill_9

pytestmark = pytest.mark.anyio

CHAT = {"type": "chat", "messages": []}


def log_args(i: int) -> tuple[Any, ...]:
    now = time.time()
    return ("openai", "gpt-4o", CHAT, CHAT, now - 1, now, None, [f"d{i}"])


async def stored_ids(probe: Probe) -> set[str]:
    return {r["client_request_id"] for r in await probe.requests()}


async def until(condition: Any, timeout: float = 30) -> None:
    """Poll until ``condition()`` (an async callable) is true; fail after ``timeout``."""
    with anyio.fail_after(timeout):
        while not await condition():  # noqa: ASYNC110 - the state is in another process
            await anyio.sleep(0.05)


async def test_records_spooled_in_an_outage_ship_in_the_background_once_it_ends(
    make_client: Factory, probe: Probe
) -> None:
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    async with make_client() as pl:
        ids = {(await pl.log_request(*log_args(i)))["id"] for i in range(20)}  # type: ignore[index]

        async def spooled_all() -> bool:
            return pl.stats()["spooled"] == 20

        await until(spooled_all)  # the outage was noticed
        await probe.clear_faults()

        async def arrived() -> bool:
            return await stored_ids(probe) == ids

        await until(arrived)  # no flush(): the shipper noticed the server is back
        stats = pl.stats()
        assert (stats["shipped"], stats["replayed"], stats["pending"]) == (20, 20, 0)


async def test_flush_keeps_trying_through_an_outage_until_the_server_answers(
    make_client: Factory, probe: Probe
) -> None:
    # Twelve 503s: several shipments fail (4 attempts each) before one gets through.
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": 12})
    async with make_client() as pl:
        ids = {(await pl.log_request(*log_args(i)))["id"] for i in range(20)}  # type: ignore[index]
        assert await pl.flush(timeout=60)
        assert pl.stats()["pending"] == 0
    assert (await probe.fault_stats())["hits"]["/promptrun/v1/ingest"] == 12
    assert await stored_ids(probe) == ids


async def test_flush_and_stats_never_report_success_while_a_record_is_unshipped(
    make_client: Factory, probe: Probe
) -> None:
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    async with make_client() as pl:
        for i in range(10):
            await pl.log_request(*log_args(i))
        assert not await pl.flush(timeout=1)
        stats = pl.stats()
        assert (stats["shipped"], stats["pending"], stats["dropped"]) == (0, 10, 0)
        await probe.clear_faults()
        assert await pl.flush(timeout=30)
        stats = pl.stats()
        assert (stats["shipped"], stats["pending"]) == (10, 0)


async def test_stats_after_closing_in_an_outage_count_what_waits_in_the_spool(
    make_client: Factory, probe: Probe, tmp_path: Path
) -> None:
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    pl = make_client(shutdown_timeout=0.3)
    for i in range(7):
        await pl.log_request(*log_args(i))
    await pl.aclose()
    stats = pl.stats()
    assert (stats["shipped"], stats["pending"], stats["spooled"]) == (0, 7, 7)
    assert len(spooled(tmp_path / "spool")) == 7


async def test_an_unwritable_spool_keeps_records_in_memory_retries_them_and_warns_once(
    make_client: Factory, probe: Probe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    folder = blocker / "spool"
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with make_client(spool_dir=folder) as pl:
            ids = {(await pl.log_request(*log_args(i)))["id"] for i in range(30)}  # type: ignore[index]
            assert not await pl.flush(timeout=1)
            stats = pl.stats()
            assert (stats["in_memory"], stats["pending"], stats["dropped"]) == (30, 30, 0)
            await probe.clear_faults()
            assert await pl.flush(timeout=30)
            assert pl.stats()["in_memory"] == 0
    assert await stored_ids(probe) == ids
    about_folder = [r for r in caplog.records if "cannot write its spool folder" in r.getMessage()]
    assert len(about_folder) == 1
    assert str(folder) in about_folder[0].getMessage()
    assert "Not a directory" in about_folder[0].getMessage()


async def test_an_unwritable_spool_bounds_what_waits_in_memory_and_counts_the_rest(
    make_client: Factory, probe: Probe, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    async with make_client(spool_dir=blocker / "spool", log_channel_size=10) as pl:
        for i in range(30):
            await pl.log_request(*log_args(i))
        assert not await pl.flush(timeout=1)  # records were dropped
        stats = pl.stats()
        assert (stats["in_memory"], stats["dropped"]) == (10, 20)
        await probe.clear_faults()
        assert not await pl.flush(timeout=30)  # the ten ship, but twenty were lost
    assert len(await stored_ids(probe)) == 10


@pytest.mark.parametrize("client", ["sync", "async"])
async def test_a_client_killed_9_right_after_logging_at_full_speed_loses_nothing(
    client: str, make_client: Factory, probe: Probe, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    env = {
        **os.environ,
        "PROMPTLAYER_API_KEY": probe.srv.api_key,
        "PROMPTLAYER_BASE_URL": probe.srv.base_url,
        "SPOOL": str(folder),
    }
    body = """
        import os
        CHAT = {"type": "chat", "messages": []}
        def args():
            return ("openai", "gpt-4o", CHAT, CHAT, 1.0, 2.0)
    """
    if client == "sync":
        code = (
            body
            + """
        from promptrun import PromptLayer
        pl = PromptLayer(spool_dir=os.environ["SPOOL"])
        ids = [pl.log_request(*args())["id"] for _ in range(5000)]
        print(" ".join(ids), flush=True)
        import time; time.sleep(60)
        """
        )
    else:
        code = (
            body
            + """
        import asyncio
        from promptrun import AsyncPromptLayer
        async def main():
            pl = AsyncPromptLayer(spool_dir=os.environ["SPOOL"])
            ids = [(await pl.log_request(*args()))["id"] for _ in range(5000)]
            print(" ".join(ids), flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
        )
    ids = await anyio.to_thread.run_sync(start_then_kill_9, code, env)
    assert len(ids) == 5000
    async with make_client(spool_dir=folder) as pl:  # the next client ships what was left
        assert await pl.flush(timeout=60)
    stored = [r["client_request_id"] for r in await _all_requests(probe)]
    assert sorted(stored) == sorted(ids)  # every one, none twice
    assert spooled(folder) == []


async def _all_requests(probe: Probe) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = await probe._call("GET", f"/promptrun/v1/requests?limit=1000&offset={len(items)}")
        items += page["items"]
        if len(page["items"]) < 1000:
            return items


async def test_a_live_client_ships_what_a_killed_one_left_in_the_shared_folder(
    make_client: Factory, probe: Probe, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    env = {
        **os.environ,
        "PROMPTLAYER_API_KEY": probe.srv.api_key,
        "PROMPTLAYER_BASE_URL": probe.srv.base_url,
        "SPOOL": str(folder),
    }
    async with make_client(spool_dir=folder) as survivor:
        code = """
            import os
            from promptrun import PromptLayer
            pl = PromptLayer(spool_dir=os.environ["SPOOL"])
            chat = {"type": "chat", "messages": []}
            ids = [pl.log_request("openai", "m", chat, chat, 1.0, 2.0)["id"] for _ in range(50)]
            print(" ".join(ids), flush=True)
            import time; time.sleep(60)
        """
        ids = await anyio.to_thread.run_sync(start_then_kill_9, code, env)
        mine = {(await survivor.log_request(*log_args(i)))["id"] for i in range(5)}  # type: ignore[index]
        await probe.clear_faults()
        assert await survivor.flush(timeout=30)  # adopts what the dead process left
        assert survivor.stats()["replayed"] >= 50
    assert await stored_ids(probe) == set(ids) | mine


async def test_on_the_hosted_shape_records_spooled_in_an_outage_arrive_once(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.faults(
        {"path": "/promptrun/v1/info", "status": 404, "times": 1000},
        {"path": "/log-request", "status": 503, "times": 8},
    )
    async with make_client() as pl:
        ids = {(await pl.log_request(*log_args(i)))["id"] for i in range(10)}  # type: ignore[index]
        result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        assert await pl.track.score(result["request_id"], 42)
        assert await pl.flush(timeout=60)
        stats = pl.stats()
        assert (stats["shipped"], stats["pending"], stats["failed"]) == (12, 0, 0)
    rows = await probe.requests()
    assert len(rows) == 11  # ten logs and the run, none twice
    [run_row] = [r for r in rows if r["kind"] != "log"]
    assert list((await probe.request(run_row["id"]))["scores"].values()) == [42]
    assert len(ids) == 10


async def test_a_track_call_waits_for_its_record_spooled_in_an_outage(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": None})
    async with make_client() as pl:
        result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        rid = result["request_id"]

        async def down() -> bool:
            return pl.stats()["spooled"] >= 1

        await until(down)
        await probe.clear_faults()
        assert await pl.track.score(rid, 77, "quality")
        assert await pl.flush(timeout=30)
        assert pl.stats()["failed"] == 0
    assert (await probe.request(rid))["scores"]["quality"] == 77
