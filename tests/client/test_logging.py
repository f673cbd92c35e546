"""Background logging: log_request, track.*, flush, the spool, and the hosted API's shapes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from promptrun import PromptLayerValidationError

from .conftest import Factory, Probe

pytestmark = pytest.mark.anyio

CHAT_IN = {
    "type": "chat",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}
CHAT_OUT = {
    "type": "chat",
    "messages": [{"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
}


def log_kwargs(**extra: object) -> dict:
    now = time.time()
    return dict(
        provider="openai",
        model="gpt-4o",
        input=CHAT_IN,
        output=CHAT_OUT,
        request_start_time=now - 1,
        request_end_time=now,
        **extra,
    )


async def test_log_request_returns_at_once_with_a_client_id_then_ships(
    make_client: Factory, probe: Probe
) -> None:
    async with make_client() as pl:
        logged = await pl.log_request(**log_kwargs(tags=["a"], input_tokens=3))
        assert logged is not None
        assert logged["id"].startswith("req_")
        assert await pl.flush(timeout=10)
    stored = await probe.request(logged["id"])
    assert stored["tags"] == ["a"]
    assert stored["input_tokens"] == 3


async def test_log_request_returns_as_prompt_version_the_blueprint_the_server_stores(
    make_client: Factory, probe: Probe
) -> None:
    async with make_client() as pl:
        logged = await pl.log_request(**log_kwargs(parameters={"temperature": 0.3}))
        assert logged is not None
        assert await pl.flush(timeout=10)
    stored = await probe.request(logged["id"])
    assert logged["request_id"] == logged["id"]
    assert logged["prompt_version"] == stored["prompt_blueprint"]
    assert [m["role"] for m in logged["prompt_version"]["prompt_template"]["messages"]] == [
        "user",
        "assistant",
    ]


async def test_log_request_rejects_a_template_without_its_messages_before_queueing(
    make_client: Factory,
) -> None:
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError, match="output must be a prompt template"):
            await pl.log_request(**{**log_kwargs(), "output": {"type": "chat"}})
        assert pl.stats()["queued"] == 0


async def test_log_request_rejects_bad_input_before_queueing(make_client: Factory) -> None:
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError, match="input"):
            await pl.log_request(**{**log_kwargs(), "input": "hi"})
        with pytest.raises(PromptLayerValidationError, match="input_tokens"):
            await pl.log_request(**log_kwargs(input_tokens=-1))
        assert pl.stats()["queued"] == 0


async def test_log_request_refuses_out_of_range_numbers_before_queueing(
    make_client: Factory,
) -> None:
    in_ms = time.time() * 1000
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError, match=r"request_start_time.*milliseconds"):
            await pl.log_request(**{**log_kwargs(), "request_start_time": in_ms})
        with pytest.raises(PromptLayerValidationError, match="request_end_time"):
            await pl.log_request(**{**log_kwargs(), "request_end_time": float("nan")})
        with pytest.raises(PromptLayerValidationError, match="output_tokens"):
            await pl.log_request(**log_kwargs(output_tokens=10**12))
        with pytest.raises(PromptLayerValidationError, match="price"):
            await pl.log_request(**log_kwargs(price=-1e300))
        assert pl.stats()["queued"] == 0


async def test_track_calls_are_applied_after_the_record_they_name(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        rid = result["request_id"]
        group = await pl.group.create()
        assert await pl.track.score(rid, 87, "quality")
        assert await pl.track.metadata(rid, {"session": "s1"})
        assert await pl.track.group(rid, group)
        assert await pl.track.prompt(rid, "greet", {"name": "A"}, version=1)
        assert await pl.flush(timeout=10)
    stored = await probe.request(rid)
    assert stored["scores"]["quality"] == 87
    assert stored["metadata"]["session"] == "s1"
    assert group in stored["groups"]


async def test_track_arguments_are_validated_like_the_peer(make_client: Factory) -> None:
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError):
            await pl.track.score("req_x", 101)
        with pytest.raises(PromptLayerValidationError):
            await pl.track.metadata("req_x", {"a": 1})  # type: ignore[dict-item]


async def test_against_the_hosted_shape_logging_and_tracking_still_work(
    make_client: Factory, probe: Probe
) -> None:
    # Without promptrun's /promptrun/v1/info the client falls back to /track-request,
    # /log-request and /library-track-* with the server's integer ids, as on the hosted API.
    await probe.publish("greet")
    await probe.faults(
        {"path": "/promptrun/v1/info", "status": 404, "times": 1000},
        *(
            {"path": p, "status": None, "times": None}  # observe only: count the calls
            for p in ("/track-request", "/log-request", "/library-track-score")
        ),
    )
    async with make_client() as pl:
        result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        logged = await pl.log_request(**log_kwargs())
        assert await pl.track.score(result["request_id"], 55)
        assert await pl.flush(timeout=10)
        assert pl._runtime is not None
        assert pl._runtime.shipper._mode == "per-record"
    hits = (await probe.fault_stats())["hits"]
    assert hits.get("/track-request") == 1
    assert hits.get("/log-request") == 1
    assert hits.get("/library-track-score") == 1
    assert len(await probe.requests()) == 2
    assert logged is not None
    [run_row] = [r for r in await probe.requests() if r["kind"] != "log"]
    scores = (await probe.request(run_row["id"]))["scores"]
    assert list(scores.values()) == [55]


async def test_records_spool_while_the_server_fails_and_arrive_after_it_recovers(
    make_client: Factory, probe: Probe
) -> None:
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": 1000})
    async with make_client() as pl:
        ids = [(await pl.log_request(**log_kwargs()))["id"] for _ in range(20)]  # type: ignore[index]
        assert not await pl.flush(timeout=5)
        assert pl.stats()["spooled"] >= 1
        await probe.clear_faults()
        await asyncio.sleep(0.6)  # past the outage backoff
        assert await pl.flush(timeout=10)
    stored = {r["client_request_id"] for r in await probe.requests()}
    assert stored == set(ids)


async def test_a_burst_far_over_the_memory_bound_is_written_ahead_and_all_delivered(
    make_client: Factory, probe: Probe
) -> None:
    # log_channel_size bounds only what waits in memory when the spool cannot be written.
    async with make_client(log_channel_size=5) as pl:
        ids = [(await pl.log_request(**log_kwargs()))["id"] for _ in range(200)]  # type: ignore[index]
        assert await pl.flush(timeout=10)
        stats = pl.stats()
    assert (stats["shipped"], stats["dropped"], stats["pending"], stats["in_memory"]) == (
        200,
        0,
        0,
        0,
    )
    assert {r["client_request_id"] for r in await probe.requests()} == set(ids)


async def test_shutdown_spools_what_a_slow_server_did_not_take_and_the_next_client_ships_it(
    make_client: Factory, probe: Probe, tmp_path: Path
) -> None:
    await probe.faults({"path": "/promptrun/v1/ingest", "delay_ms": 3000, "times": 1})
    pl = make_client(shutdown_timeout=0.3)
    ids = [(await pl.log_request(**log_kwargs()))["id"] for _ in range(10)]  # type: ignore[index]
    await asyncio.sleep(0.1)
    await pl.aclose()
    assert pl.stats()["spooled"] == 10
    await probe.clear_faults()
    async with make_client() as again:
        assert await again.flush(timeout=10)
    stored = [r["client_request_id"] for r in await probe.requests()]
    assert sorted(stored) == sorted(ids)  # the slow batch may have landed too: never twice


async def test_server_down_then_back_loses_nothing(make_client: Factory, tmp_path: Path) -> None:
    from promptrun.testing import ServerProcess

    db = tmp_path / "db.sqlite3"
    with ServerProcess(db) as srv:
        pl = make_client(api_key=srv.api_key, base_url=srv.base_url)
        first = [(await pl.log_request(**log_kwargs()))["id"] for _ in range(5)]  # type: ignore[index]
        assert await pl.flush(timeout=10)
        srv.stop()
        during = [(await pl.log_request(**log_kwargs()))["id"] for _ in range(5)]  # type: ignore[index]
        assert not await pl.flush(timeout=3)
        srv.start()
        await asyncio.sleep(0.6)
        assert await pl.flush(timeout=10)
        await pl.aclose()
        probe = Probe(srv)  # type: ignore[arg-type]
        stored = [r["client_request_id"] for r in await probe.requests()]
    assert sorted(stored) == sorted(first + during)
