"""The peer's ``AsyncPromptLayer.run()`` through the sandbox, and what the server stored."""

from __future__ import annotations

from typing import Any

import anthropic
import anyio
import pytest
from promptlayer import AsyncPromptLayer, PromptLayerNotFoundError

from ._peer import GREETING, MODELS, StoredLog
from .test_run import FUNCTION_NAMES, PROVIDERS, check_stored, delta_text, response_text

pytestmark = pytest.mark.anyio


async def read(stored: StoredLog, request_id: int) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(stored.request, request_id)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_async_run_calls_the_provider_and_the_server_stores_the_request_under_its_id(
    apl: AsyncPromptLayer, stored: StoredLog, provider: str
) -> None:
    result = await apl.run(provider, input_variables=GREETING)
    request_id = result["request_id"]
    assert isinstance(request_id, int)
    text = response_text(provider, result["raw_response"])
    assert text
    assert result["prompt_blueprint"]["prompt_template"]["messages"][-1]["role"] == "assistant"
    record = await read(stored, request_id)
    check_stored(record, provider, request_id=request_id)
    assert record["function_name"] == FUNCTION_NAMES[provider]
    assert (
        record["prompt_blueprint"]["prompt_template"]["messages"][-1]["content"][0]["text"] == text
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_async_streamed_run_ends_with_an_item_carrying_the_stored_request_id(
    apl: AsyncPromptLayer, stored: StoredLog, provider: str
) -> None:
    stream = await apl.run(provider, input_variables=GREETING, stream=True)
    seen = [(item["request_id"], delta_text(item)) async for item in stream]
    assert len(seen) >= 3
    *chunks, (request_id, _) = seen
    assert all(rid is None for rid, _ in chunks)
    assert isinstance(request_id, int)
    record = await read(stored, request_id)
    check_stored(record, provider, request_id=request_id, stream=True)
    messages = record["prompt_blueprint"]["prompt_template"]["messages"]
    assert "".join(text for _, text in chunks) == messages[-1]["content"][0]["text"]


async def test_async_run_records_tags_metadata_and_group(
    apl: AsyncPromptLayer, stored: StoredLog
) -> None:
    group_id = await apl.group.create()
    assert isinstance(group_id, int)
    result = await apl.run(
        "google",
        input_variables=GREETING,
        tags=["async"],
        metadata={"user": "u2"},
        group_id=group_id,
    )
    record = await read(stored, result["request_id"])
    assert record["tags"] == ["async"]
    assert record["metadata"] == {"user": "u2"}
    assert record["group_id"] == group_id


async def test_async_run_of_a_missing_template_raises_not_found(apl: AsyncPromptLayer) -> None:
    with pytest.raises(PromptLayerNotFoundError):
        await apl.run("no-such-template")


async def test_an_async_provider_error_is_reraised_and_stored_as_an_error_record(
    apl: AsyncPromptLayer, stored: StoredLog
) -> None:
    before = await anyio.to_thread.run_sync(stored.total)
    failure = {"status": 429, "provider": "anthropic", "times": 5, "retry_after": 0.01}
    await anyio.to_thread.run_sync(stored.sandbox, {"fail": [failure]})
    try:
        with pytest.raises(anthropic.RateLimitError):
            await apl.run("anthropic", input_variables=GREETING)
    finally:
        await anyio.to_thread.run_sync(stored.sandbox_reset)
    assert await anyio.to_thread.run_sync(stored.total) == before + 1
    record = await anyio.to_thread.run_sync(stored.latest)
    assert record["status"] == "ERROR"
    assert record["error_type"] == "PROVIDER_RATE_LIMIT"
    assert record["provider"] == "anthropic"
    assert record["model"] == MODELS["anthropic"]["name"]
