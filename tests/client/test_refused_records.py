"""Records the server refuses, or that cannot be sent at all: flush() says so, the warning says
why and what to do, and the record is kept in refused.jsonl in the spool folder; text that
cannot be sent as JSON is refused at the call that hands it over."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptrun import AsyncPromptLayer, PromptLayer, PromptLayerValidationError
from promptrun.pipeline import new_request_id
from promptrun.testing import RunningServer, running_server
from promptrun.wire.ingest import TrackRecord

from .._clients import Factory, Probe
from .._registry_stub import StubRegistry, chat_template, stub_registry

pytestmark = pytest.mark.anyio

CHAT = {"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}


def chat(text: str) -> dict[str, object]:
    return {
        "type": "chat",
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def refused_file(folder: Path) -> Path:
    [path] = folder.rglob("refused.jsonl")
    return path


def refused_lines(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in refused_file(folder).read_text().splitlines()]


@pytest.fixture
def stub() -> Iterator[StubRegistry]:
    with stub_registry() as s:
        s.publish("greet", chat_template())
        yield s


async def test_flush_is_false_when_the_server_refused_a_record(
    stub: StubRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue("/log-request", 400)
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with AsyncPromptLayer(
            api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path
        ) as pl:
            first = await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
            await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
            assert not await pl.flush(timeout=30)
            stats = pl.stats()
    assert (stats["shipped"], stats["failed"], stats["pending"]) == (1, 1, 0)
    [kept] = refused_lines(tmp_path)
    assert kept["record"]["client_request_id"] == first["request_id"]  # type: ignore[index]
    assert "stub failure 400 (HTTP 400)" in str(kept["reason"])
    [warning] = [r.getMessage() for r in caplog.records if "refused log record" in r.getMessage()]
    assert f"It is kept in {refused_file(tmp_path)}." in warning


@pytest.fixture
def small_server() -> Iterator[RunningServer]:
    with running_server(max_body_bytes=64 * 1024, max_record_bytes=64 * 1024) as srv:
        yield srv


async def test_a_record_larger_than_the_server_takes_is_named_with_its_size_and_kept(
    small_server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = chat("x" * 100_000)
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with AsyncPromptLayer(
            api_key=small_server.api_key, base_url=small_server.base_url, spool_dir=tmp_path
        ) as pl:
            small = await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
            large = await pl.log_request("openai", "m", big, CHAT, 1.0, 2.0)
            assert not await pl.flush(timeout=30)
            stats = pl.stats()
    assert (stats["shipped"], stats["failed"]) == (1, 1)
    assert await Probe(small_server).request(str(small["request_id"])) is not None
    [kept] = refused_lines(tmp_path)
    assert kept["record"]["client_request_id"] == large["request_id"]  # type: ignore[index]
    [warning] = [r.getMessage() for r in caplog.records if "refused log record" in r.getMessage()]
    size = len(json.dumps(kept["record"], separators=(",", ":")).encode())
    assert f"it is {size:,} bytes, more than the server takes in one request" in warning
    assert "the limit of this endpoint is 65536 bytes" in warning  # the server's own words
    assert "a single record this large needs less in it" in warning
    assert "send fewer records per request" not in warning  # it was one record
    assert "--max-record-bytes" in warning and "PROMPTRUN_MAX_RECORD_BYTES" in warning
    assert "--max-body-bytes" not in warning  # not the logging endpoints' limit
    assert "--max-body-bytes" not in str(kept["reason"]) and "refused.jsonl" in warning


@pytest.mark.parametrize("status", ["BANANA", "", "ERROR ", 3])
async def test_log_request_with_a_status_the_server_refuses_is_refused_at_the_call(
    status: object, server: RunningServer, tmp_path: Path
) -> None:
    async with AsyncPromptLayer(
        api_key=server.api_key, base_url=server.base_url, spool_dir=tmp_path
    ) as pl:
        with pytest.raises(PromptLayerValidationError, match="status") as info:
            await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0, status=status)  # type: ignore[arg-type]
        assert await pl.flush(timeout=30)
        assert pl.stats()["failed"] == 0
    if status != 3:
        assert "SUCCESS, WARNING, ERROR" in str(info.value)


async def test_log_request_status_is_case_insensitive_and_stored_upper_case(
    server: RunningServer, probe: Probe, tmp_path: Path
) -> None:
    async with AsyncPromptLayer(
        api_key=server.api_key, base_url=server.base_url, spool_dir=tmp_path
    ) as pl:
        logged = await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0, status="warning")
        assert await pl.flush(timeout=30)
    stored = await probe.request(str(logged["request_id"]))
    assert stored is not None and stored["status"] == "WARNING"


async def test_log_request_with_a_lone_surrogate_is_refused_at_the_call_naming_the_field(
    tmp_path: Path,
) -> None:
    bad = chat("caf\udce9")
    async with AsyncPromptLayer(
        api_key="pl_k", base_url="http://127.0.0.1:9", spool_dir=tmp_path, shutdown_timeout=0.1
    ) as pl:
        with pytest.raises(PromptLayerValidationError) as caught:
            await pl.log_request("openai", "m", bad, CHAT, 1.0, 2.0)
        assert pl.stats()["queued"] == 0
    assert str(caught.value).startswith(
        "log_request(): input.messages[0].content[0].text (position 3) holds a lone surrogate"
    )
    with (
        PromptLayer(
            api_key="pl_k", base_url="http://127.0.0.1:9", spool_dir=tmp_path,
            shutdown_timeout=0.1,
        ) as sync,
        pytest.raises(PromptLayerValidationError, match=r"output\.messages"),
    ):  # fmt: skip
        sync.log_request("openai", "m", CHAT, bad, 1.0, 2.0)


async def test_a_run_whose_variables_hold_a_lone_surrogate_is_refused_naming_the_variable(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError) as caught:
            await pl.run("greet", input_variables={"name": "caf\udce9", "topic": "x"})
    assert str(caught.value).startswith(
        "run(): input_variables.name (position 3) holds a lone surrogate"
    )


async def test_a_run_record_holding_a_lone_surrogate_is_shipped_with_it_replaced(
    make_client: Factory, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        rt = await pl._runtime_here()
        record = TrackRecord(client_request_id=new_request_id(), body={"function_name": "f",
            "provider_type": "openai", "args": [], "kwargs": {"text": "caf\udce9"},
            "request_response": {}, "request_start_time": 1.0, "request_end_time": 2.0,
            "prompt_input_variables": {}})  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="promptlayer"):
            rt.shipper.submit(record)  # what run() hands over after the provider answered
        assert await pl.flush(timeout=30)
    stored = await probe.request(record.client_request_id)
    assert "caf\ufffd" in json.dumps(stored, ensure_ascii=False)
    [warning] = [r.getMessage() for r in caplog.records if "lone surrogate" in r.getMessage()]
    assert "kwargs.text (position 3)" in warning
