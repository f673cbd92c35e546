"""Metadata past the server's limits fails at the call, before anything is sent or queued:
a record the server would refuse is never made, so none is lost to a refusal later."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from promptrun import PromptLayer, PromptLayerValidationError
from promptrun.testing import RunningServer

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

CHAT = {"type": "chat", "messages": []}
VARIABLES = {"name": "A", "topic": "b"}
MANY = {str(i): "v" for i in range(1_001)}
PAST_LIMITS = [
    (MANY, "metadata has 1,001 keys, more than the 1,000"),
    ({"k" * 513: "v"}, "is 513 characters, more than 512"),
    ({"note": "v" * 1_001}, "metadata value of 'note' is 1,001 characters, more than 1,000"),
    ({"doc": {"text": "x" * 995}}, "metadata value of 'doc' is more than 1,000 characters as JSON"),
    ({"k": "😀" * 500}, "metadata value of 'k' is 2,001 bytes of UTF-8 with its key"),
]
IDS = ["keys", "key", "value", "json value", "bytes"]


def log_args(metadata: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "provider": "openai", "model": "gpt-4o", "input": CHAT, "output": CHAT,
        "request_start_time": now - 1, "request_end_time": now, "metadata": metadata,
    }  # fmt: skip


async def _nothing_reached(probe: Probe) -> None:
    assert await probe.requests() == []
    assert (await probe.sandbox_stats())["stats"]["total"] == 0
    assert (await probe.fault_stats())["hits"] == {}  # not even a template fetch


async def _observe(probe: Probe) -> None:
    await probe.publish("greet")
    # Observe only: count what reaches the server (a template fetch, a log, an ingest batch).
    await probe.faults(
        *(
            {"path": p, "status": None, "times": None}
            for p in ("/prompt-templates/", "/promptrun/v1/ingest", "/log-request",
                      "/track-request", "/library-track-", "/workflows/")
        )
    )  # fmt: skip


@pytest.mark.parametrize(("metadata", "says"), PAST_LIMITS, ids=IDS)
@pytest.mark.parametrize("inline", [False, True], ids=["background", "inline"])
async def test_log_request_and_run_refuse_metadata_past_a_limit_before_sending_anything(
    make_client: Factory, probe: Probe, inline: bool, metadata: Any, says: str
) -> None:
    await _observe(probe)
    async with make_client(inline_logging=inline) as pl:
        with pytest.raises(PromptLayerValidationError) as logged:
            await pl.log_request(**log_args(metadata))
        with pytest.raises(PromptLayerValidationError) as ran:
            await pl.run("greet", input_variables=VARIABLES, metadata=metadata)
        assert await pl.flush(timeout=10)
        assert pl.stats()["queued"] == 0
    assert str(logged.value).startswith("log_request(): ")
    assert str(ran.value).startswith("run(): ")
    for error in (logged.value, ran.value):
        assert says in str(error)
    await _nothing_reached(probe)


async def test_track_metadata_and_run_workflow_refuse_metadata_past_a_limit(
    make_client: Factory, probe: Probe
) -> None:
    await _observe(probe)
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError, match=r"^track\.metadata\(\): .*1,001 keys"):
            await pl.track.metadata("req_x", MANY)
        with pytest.raises(PromptLayerValidationError, match="more than 1,000"):
            await pl.track.metadata("req_x", {"note": "v" * 1_001})
        room = {str(i): "v" for i in range(997)}  # a workflow adds 4 keys of its own
        with pytest.raises(PromptLayerValidationError, match=r"^run_workflow\(\): .*996"):
            await pl.run_workflow("flow", metadata=room)
        assert await pl.flush(timeout=10)
        assert pl.stats()["queued"] == 0
    await _nothing_reached(probe)


async def test_the_sync_client_refuses_too_in_the_callers_thread(
    provider_env: RunningServer, probe: Probe, tmp_path: Path
) -> None:
    def calls() -> list[str]:
        errors = []
        with PromptLayer(
            api_key=provider_env.api_key, base_url=provider_env.base_url, spool_dir=tmp_path
        ) as pl:
            for call in (
                lambda: pl.log_request(**log_args(MANY)),
                lambda: pl.run("greet", input_variables=VARIABLES, metadata=MANY),
                lambda: pl.track.metadata("req_x", MANY),
            ):
                with pytest.raises(PromptLayerValidationError) as caught:
                    call()
                errors.append(str(caught.value))
            assert pl.stats()["queued"] == 0
        return errors

    await _observe(probe)
    errors = await anyio.to_thread.run_sync(calls)
    assert [e.split(":")[0] for e in errors] == ["log_request()", "run()", "track.metadata()"]
    await _nothing_reached(probe)


async def test_metadata_at_the_limits_is_logged_whole(make_client: Factory, probe: Probe) -> None:
    at_limits = {**{str(i): "v" for i in range(998)}, "long": "v" * 1_000, "k" * 512: "v"}
    await probe.publish("greet")
    async with make_client() as pl:
        logged = await pl.log_request(**log_args(at_limits))
        ran = await pl.run("greet", input_variables=VARIABLES, metadata=at_limits)
        assert await pl.track.metadata(ran["request_id"], {"extra": "v" * 1_000})
        assert await pl.flush(timeout=10)
        assert pl.stats()["failed"] == 0
    assert (await probe.request(logged["id"]))["metadata"] == at_limits
    assert (await probe.request(ran["request_id"]))["metadata"] == {
        **at_limits,
        "extra": "v" * 1_000,
    }
