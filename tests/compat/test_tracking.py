"""The peer's ``log_request``, ``track.*`` and ``group.create``, sync and async."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import pytest
from promptlayer import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerAPIError,
    PromptLayerBadRequestError,
)

from promptrun.testing import RunningServer

from ._peer import StoredLog

QUESTION = {
    "type": "chat",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Write a haiku"}]}],
}
ANSWER = {
    "type": "chat",
    "messages": [{"role": "assistant", "content": [{"type": "text", "text": "Old pond"}]}],
}


def log_kwargs(**overrides: Any) -> dict[str, Any]:
    now = time.time()
    kwargs: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "input": QUESTION,
        "output": ANSWER,
        "request_start_time": now - 1.5,
        "request_end_time": now,
        "parameters": {"temperature": 0.2},
        "tags": ["manual"],
        "metadata": {"source": "compat"},
        "input_tokens": 5,
        "output_tokens": 3,
        "price": 0.002,
    }
    kwargs.update(overrides)
    return kwargs


def check_logged(record: dict[str, Any], logged: dict[str, Any]) -> None:
    assert record["id"] == logged["id"]
    assert record["kind"] == "log"
    assert (record["provider"], record["model"]) == ("openai", "gpt-4o")
    assert (record["input_tokens"], record["output_tokens"]) == (5, 3)
    assert record["price"] == pytest.approx(0.002)
    assert record["tags"] == ["manual"]
    assert record["metadata"] == {"source": "compat"}
    assert record["request_end_time"] - record["request_start_time"] == pytest.approx(1.5)
    messages = record["prompt_blueprint"]["prompt_template"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"][0]["text"] == "Old pond"
    assert record["prompt_blueprint"]["metadata"]["model"]["parameters"] == {"temperature": 0.2}


def test_log_request_returns_the_stored_id_and_version(pl: PromptLayer, stored: StoredLog) -> None:
    logged = pl.log_request(
        **log_kwargs(
            score=60,
            score_name="quality",
            api_type="chat",
            prompt_name="openai",
            prompt_version_number=1,
            prompt_input_variables={"name": "Ada"},
        )
    )
    assert isinstance(logged["id"], int)
    assert logged["prompt_version"]["prompt_template"]["messages"][-1]["role"] == "assistant"
    record = stored.request(logged["id"])
    check_logged(record, logged)
    assert record["status"] == "SUCCESS"
    assert record["score"] == 60
    assert record["scores"] == {"quality": 60}
    assert record["api_type"] == "chat"
    assert (record["prompt_name"], record["prompt_version"]) == ("openai", 1)
    assert record["input_variables"] == {"name": "Ada"}


def test_log_request_stores_an_error_status(pl: PromptLayer, stored: StoredLog) -> None:
    logged = pl.log_request(
        **log_kwargs(status="ERROR", error_type="PROVIDER_TIMEOUT", error_message="took too long")
    )
    record = stored.request(logged["id"])
    assert (record["status"], record["error_type"]) == ("ERROR", "PROVIDER_TIMEOUT")
    assert record["error_message"] == "took too long"


def test_track_calls_return_true_and_the_server_has_them(
    pl: PromptLayer, stored: StoredLog
) -> None:
    request_id = pl.log_request(**log_kwargs())["id"]
    group_id = pl.group.create()
    assert isinstance(group_id, int)
    assert pl.track.metadata(request_id, {"session": "s1", "user": "u1"}) is True
    assert pl.track.score(request_id, 75) is True
    assert pl.track.score(request_id, 20, score_name="brevity") is True
    assert pl.track.prompt(request_id, "openai", {"name": "Ada"}, label="prod") is True
    assert pl.track.group(request_id, group_id) is True
    record = stored.request(request_id)
    assert record["metadata"] == {"source": "compat", "session": "s1", "user": "u1"}
    assert record["scores"] == {"brevity": 20, "default": 75}
    assert record["prompt_name"] == "openai"
    assert record["prompt_version"] == 1
    assert record["groups"] == [group_id]


def test_group_create_returns_a_new_id_each_time(pl: PromptLayer) -> None:
    first, second = pl.group.create(), pl.group.create()
    assert isinstance(first, int)
    assert isinstance(second, int)
    assert first != second


def test_tracking_an_unknown_request_raises_or_returns_false(
    pl: PromptLayer, peer_server: RunningServer
) -> None:
    with pytest.raises(PromptLayerAPIError, match="not found"):
        pl.track.score(10**9, 50)
    quiet = PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, throw_on_error=False
    )
    assert quiet.track.metadata(10**9, {"k": "v"}) is False
    assert quiet.track.group(10**9, quiet.group.create()) is False


@pytest.mark.anyio
async def test_async_log_request_returns_the_stored_id(
    apl: AsyncPromptLayer, stored: StoredLog
) -> None:
    logged = await apl.log_request(**log_kwargs(score=40))
    assert isinstance(logged["id"], int)
    record = await anyio.to_thread.run_sync(stored.request, logged["id"])
    check_logged(record, logged)
    assert record["scores"] == {"default": 40}


@pytest.mark.anyio
async def test_async_track_calls_return_true_and_the_server_has_them(
    apl: AsyncPromptLayer, stored: StoredLog
) -> None:
    request_id = (await apl.log_request(**log_kwargs()))["id"]
    group_id = await apl.group.create()
    assert isinstance(group_id, int)
    assert await apl.track.metadata(request_id, {"session": "s2"}) is True
    assert await apl.track.score(request_id, 90, score_name="accuracy") is True
    assert await apl.track.group(request_id, group_id) is True
    record = await anyio.to_thread.run_sync(stored.request, request_id)
    assert record["metadata"] == {"source": "compat", "session": "s2"}
    assert record["scores"] == {"accuracy": 90}
    assert record["groups"] == [group_id]


@pytest.mark.anyio
async def test_async_track_prompt_scrambles_its_fields_and_gets_a_clear_400(
    apl: AsyncPromptLayer, stored: StoredLog, caplog: pytest.LogCaptureFixture
) -> None:
    # The peer's async track.prompt passes its arguments in the wrong order (its bug): the
    # body's request_id is a bool and throw_on_error becomes the label. The server refuses the
    # body with a 400 naming the field; the peer then returns False, or raises given a label.
    request_id = (await apl.log_request(**log_kwargs()))["id"]
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        assert await apl.track.prompt(request_id, "openai", {"name": "Ada"}) is False
    assert "request_id" in caplog.text
    with pytest.raises(PromptLayerBadRequestError, match="request_id"):
        await apl.track.prompt(request_id, "openai", {"name": "Ada"}, version=1, label="prod")
    record = await anyio.to_thread.run_sync(stored.request, request_id)
    assert record["prompt_name"] is None


@pytest.mark.anyio
async def test_async_group_create_returns_new_ids(apl: AsyncPromptLayer) -> None:
    first, second = await apl.group.create(), await apl.group.create()
    assert isinstance(first, int)
    assert first != second
