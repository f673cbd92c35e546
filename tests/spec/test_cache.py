"""The spec's template cache section, against a stub registry on a controllable clock.

"Reduce repeated template fetch latency / Lower dependency on real-time PromptLayer API
availability / Continue serving recently known-good templates during temporary API issues",
and the two constructor examples, verbatim ("each prompt template is cached for 5 minutes").
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from promptrun import PromptLayer, PromptLayerInternalServerError

from .._registry_stub import StubRegistry, chat_template
from .conftest import OPENAI_MODEL, ManualClock, example, use_clock

PATH = "/prompt-templates/TestPrompt"

SYNC_EXAMPLE = """
from promptrun import PromptLayer
promptlayer_client = PromptLayer(
    api_key="pl_****",
    cache_ttl_seconds=300,  # each prompt template is cached for 5 minutes
)
"""

ASYNC_EXAMPLE = """
from promptrun import AsyncPromptLayer
async_promptlayer_client = AsyncPromptLayer(
    api_key="pl_****",
    cache_ttl_seconds=300,
)
"""


def test_cache_ttl_seconds_300_caches_each_prompt_template_for_5_minutes(
    stub: StubRegistry,
) -> None:
    clock = ManualClock()
    ns = example(SYNC_EXAMPLE, keep_open=True)
    client: PromptLayer = ns["promptlayer_client"]
    try:
        use_clock(client, clock)
        client.templates.get("TestPrompt")
        stub.publish("TestPrompt", chat_template("Version two.", model=OPENAI_MODEL))
        clock.advance(299.9)
        assert client.templates.get("TestPrompt")["version"] == 1
        assert stub.hits[PATH] == 1
        clock.advance(0.1)  # 5 minutes: the next caller waits for the fresh template
        assert client.templates.get("TestPrompt")["version"] == 2
        assert stub.hits[PATH] == 2
    finally:
        client.close()


def test_the_async_client_caches_templates_the_same_way(stub: StubRegistry) -> None:
    clock = ManualClock()
    ns = example(ASYNC_EXAMPLE)
    client = ns["async_promptlayer_client"]

    async def glue() -> list[int]:
        await client._runtime_here()
        client._runtime.templates.clock = clock
        versions = [(await client.templates.get("TestPrompt"))["version"]]
        stub.publish("TestPrompt", chat_template("Version two.", model=OPENAI_MODEL))
        clock.advance(299.9)
        versions.append((await client.templates.get("TestPrompt"))["version"])
        clock.advance(0.1)
        versions.append((await client.templates.get("TestPrompt"))["version"])
        await client.aclose()
        return versions

    assert asyncio.run(glue()) == [1, 1, 2]
    assert stub.hits[PATH] == 2


def test_the_cache_reduces_repeated_template_fetch_latency_to_no_round_trip(
    stub: StubRegistry,
) -> None:
    with PromptLayer(cache_ttl_seconds=300) as pl:
        for _ in range(10):
            pl.run(prompt_name="TestPrompt")
    assert stub.hits[PATH] == 1


def test_without_the_cache_every_run_fetches_its_template(stub: StubRegistry) -> None:
    with PromptLayer() as pl:
        for _ in range(3):
            pl.run(prompt_name="TestPrompt")
    assert stub.hits[PATH] == 3


def test_the_cache_lowers_dependency_on_real_time_promptlayer_api_availability(
    stub: StubRegistry, instant_retries: None
) -> None:
    with PromptLayer(cache_ttl_seconds=300) as pl:
        pl.run(prompt_name="TestPrompt")
        stub.queue(PATH, *[503] * 20)  # the registry goes down
        for _ in range(5):
            assert pl.run(prompt_name="TestPrompt")["raw_response"] is not None
    assert stub.hits[PATH] == 1


def test_recently_known_good_templates_keep_being_served_during_temporary_api_issues(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    with PromptLayer(cache_ttl_seconds=300) as pl:
        use_clock(pl, clock)
        pl.run(prompt_name="TestPrompt")
        clock.advance(301)
        stub.queue(PATH, 503)
        with caplog.at_level(logging.WARNING, logger="promptlayer"):
            response = pl.run(prompt_name="TestPrompt")
    assert response["raw_response"].choices[0].message.content
    [warning] = [r.getMessage() for r in caplog.records if r.name == "promptlayer"]
    assert "'TestPrompt'" in warning
    assert "stub failure 503" in warning


def test_without_a_known_good_template_an_api_issue_reaches_the_caller(
    stub: StubRegistry, instant_retries: None
) -> None:
    stub.queue(PATH, 503, 503, 503, 503)
    with PromptLayer(cache_ttl_seconds=300) as pl, pytest.raises(PromptLayerInternalServerError):
        pl.run(prompt_name="TestPrompt")
