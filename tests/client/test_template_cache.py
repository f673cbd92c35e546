"""The template cache's policy, on a controllable clock, against a stub registry.

Strict TTL by default (after it, the next caller waits for one shared fetch), stale-if-error
with a WARNING, and stale-while-revalidate only when asked for, with a bound.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from promptrun import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerAuthenticationError,
    PromptLayerInternalServerError,
    PromptLayerNotFoundError,
    PromptLayerValidationError,
)
from promptrun._http import ApiTransport
from promptrun._template_cache import CacheRefresh, TemplateCache
from promptrun.pipeline import PromptRef

from .._clock import ManualClock
from .._registry_stub import StubRegistry, chat_template, stub_registry

pytestmark = pytest.mark.anyio

TTL = 300.0
KEY = PromptRef("greet")
PATH = "/prompt-templates/greet"


@pytest.fixture
def stub() -> Iterator[StubRegistry]:
    with stub_registry() as s:
        s.publish("greet", chat_template("v1 {name}"))
        yield s


@asynccontextmanager
async def open_cache(
    stub: StubRegistry,
    clock: ManualClock,
    *,
    refresh: CacheRefresh = "wait",
    max_stale: float | None = None,
    timeout: float = 5.0,
) -> AsyncIterator[TemplateCache]:
    transport = ApiTransport(stub.base_url, "pl_test", timeout)
    await transport.open()
    cache = TemplateCache(
        transport, ttl=TTL, max_entries=100, refresh=refresh, max_stale=max_stale, clock=clock
    )
    try:
        async with anyio.create_task_group() as tg:
            cache.attach(tg)
            yield cache
            tg.cancel_scope.cancel()
    finally:
        await transport.close()


@asynccontextmanager
async def primed_cache(
    stub: StubRegistry, *, publish: bool = True, **options: Any
) -> AsyncIterator[tuple[TemplateCache, ManualClock]]:
    """A cache holding version 1 of "greet", with version 2 published (unless ``publish`` is
    False), and its clock."""
    clock = ManualClock()
    async with open_cache(stub, clock, **options) as cache:
        await cache.get(KEY)
        if publish:
            stub.publish("greet", chat_template("v2 {name}"))
        yield cache, clock


def text_of(template: dict[str, Any]) -> str:
    return str(template["prompt_template"]["messages"][0]["content"][0]["text"])


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "promptlayer" and r.levelno == logging.WARNING
    ]


async def test_within_the_ttl_the_cache_answers_without_asking_the_registry(
    stub: StubRegistry,
) -> None:
    async with primed_cache(stub) as (cache, clock):
        clock.advance(TTL - 0.001)
        assert text_of(await cache.get(KEY)) == "v1 {name}"
    assert stub.hits[PATH] == 1


async def test_after_the_ttl_the_next_caller_waits_for_the_fresh_template(
    stub: StubRegistry,
) -> None:
    async with primed_cache(stub) as (cache, clock):
        clock.advance(TTL)
        assert text_of(await cache.get(KEY)) == "v2 {name}"
        assert text_of(await cache.get(KEY)) == "v2 {name}"
    assert stub.hits[PATH] == 2


async def test_callers_of_an_expired_template_share_one_fetch(stub: StubRegistry) -> None:
    async with primed_cache(stub) as (cache, clock):
        clock.advance(TTL + 1)
        results: list[str] = []

        async def call() -> None:
            results.append(text_of(await cache.get(KEY)))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(call)
    assert results == ["v2 {name}"] * 20
    assert stub.hits[PATH] == 2


@pytest.mark.parametrize(
    "failure",
    [500, 503, 429, "drop", "hang"],
    ids=["500", "503", "429", "connection-error", "timeout"],
)
async def test_an_expired_template_is_served_stale_only_when_the_registry_fails(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture, failure: int | str
) -> None:
    # Only the hanging registry needs a short timeout; the others answer (or drop) at once, and
    # a short one would let a loaded machine time the fetch out before it reaches the stub.
    async with primed_cache(stub, timeout=2.0 if failure == "hang" else 30.0) as (cache, clock):
        clock.advance(TTL + 60)
        stub.queue(PATH, failure)
        with caplog.at_level(logging.WARNING, logger="promptlayer"):
            assert text_of(await cache.get(KEY)) == "v1 {name}"
    [warning] = warnings_of(caplog)
    assert "'greet'" in warning
    assert "60 s past its TTL" in warning
    assert "registry failed" in warning
    # One attempt: with a known-good entry in hand the caller is not held for the retry cycle.
    assert stub.hits[PATH] == 2


async def test_after_a_failure_the_registry_is_asked_again_only_after_a_back_off(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    async with primed_cache(stub) as (cache, clock):
        clock.advance(TTL)
        stub.queue(PATH, 500)
        with caplog.at_level(logging.WARNING, logger="promptlayer"):
            for _ in range(50):
                assert text_of(await cache.get(KEY)) == "v1 {name}"
        assert stub.hits[PATH] == 2
        assert len(warnings_of(caplog)) == 1
        clock.advance(30)
        assert text_of(await cache.get(KEY)) == "v2 {name}"
    assert stub.hits[PATH] == 3


async def test_a_retry_after_longer_than_the_back_off_is_honoured(stub: StubRegistry) -> None:
    async with primed_cache(stub, publish=False) as (cache, clock):
        clock.advance(TTL)
        stub.queue(PATH, {"status": 429, "headers": {"Retry-After": "120"}})
        await cache.get(KEY)
        clock.advance(119)
        await cache.get(KEY)
        assert stub.hits[PATH] == 2
        clock.advance(1)
        await cache.get(KEY)
    assert stub.hits[PATH] == 3


async def test_a_template_deleted_upstream_is_not_served_stale(stub: StubRegistry) -> None:
    async with primed_cache(stub, publish=False) as (cache, clock):
        del stub.templates["greet"]
        clock.advance(TTL)
        with pytest.raises(PromptLayerNotFoundError):
            await cache.get(KEY)
        with pytest.raises(PromptLayerNotFoundError):
            await cache.get(KEY)
    assert stub.hits[PATH] == 3


async def test_an_authentication_error_is_raised_not_served_stale(stub: StubRegistry) -> None:
    async with primed_cache(stub, publish=False) as (cache, clock):
        clock.advance(TTL)
        stub.queue(PATH, 401)
        with pytest.raises(PromptLayerAuthenticationError):
            await cache.get(KEY)
        assert text_of(await cache.get(KEY)) == "v1 {name}"  # the next caller fetches again


async def test_a_miss_with_the_registry_down_fails_after_the_specs_four_attempts(
    stub: StubRegistry,
) -> None:
    clock = ManualClock()
    stub.queue(PATH, 500, 500, 500, 500)
    async with open_cache(stub, clock) as cache:
        with pytest.raises(PromptLayerInternalServerError, match="stub failure 500"):
            await cache.get(KEY)
    assert stub.hits[PATH] == 4


async def test_background_refresh_serves_an_expired_template_at_once_while_one_fetch_runs(
    stub: StubRegistry,
) -> None:
    async with primed_cache(stub, refresh="background") as (cache, clock):
        clock.advance(TTL + 10)
        stub.queue(PATH, "hang")  # the refresh cannot finish while we look
        for _ in range(10):
            assert text_of(await cache.get(KEY)) == "v1 {name}"
        with anyio.fail_after(5):
            while stub.hits[PATH] < 2:  # noqa: ASYNC110 - the stub is another thread
                await anyio.sleep(0.01)
        assert stub.hits[PATH] == 2


async def test_background_refresh_replaces_the_entry_when_the_fetch_lands(
    stub: StubRegistry,
) -> None:
    async with primed_cache(stub, refresh="background") as (cache, clock):
        clock.advance(TTL)
        assert text_of(await cache.get(KEY)) == "v1 {name}"
        with anyio.fail_after(5):
            # The refresh lands when the stub (another thread) answers: poll, with a deadline.
            while text_of(await cache.get(KEY)) != "v2 {name}":  # noqa: ASYNC110
                await anyio.sleep(0.01)
    assert stub.hits[PATH] == 2


async def test_background_refresh_never_serves_an_entry_past_its_staleness_bound(
    stub: StubRegistry,
) -> None:
    async with primed_cache(stub, refresh="background", max_stale=60) as (cache, clock):
        clock.advance(TTL + 60)
        assert text_of(await cache.get(KEY)) == "v2 {name}"


async def test_background_refresh_by_default_serves_at_most_one_ttl_past_expiry(
    stub: StubRegistry,
) -> None:
    async with primed_cache(stub, refresh="background") as (cache, clock):
        clock.advance(2 * TTL)
        assert text_of(await cache.get(KEY)) == "v2 {name}"


async def test_a_failed_background_refresh_warns_and_keeps_serving_the_entry(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    async with primed_cache(stub, refresh="background", publish=False) as (cache, clock):
        clock.advance(TTL)
        stub.queue(PATH, 503)
        with caplog.at_level(logging.WARNING, logger="promptlayer"):
            assert text_of(await cache.get(KEY)) == "v1 {name}"
            with anyio.fail_after(5):
                while not warnings_of(caplog):  # noqa: ASYNC110 - as above
                    await anyio.sleep(0.01)
            assert text_of(await cache.get(KEY)) == "v1 {name}"
    assert "'greet'" in warnings_of(caplog)[0]
    assert stub.hits[PATH] == 2


async def test_invalidating_during_a_fetch_keeps_the_fetched_template_out_of_the_cache(
    stub: StubRegistry,
) -> None:
    clock = ManualClock()
    async with open_cache(stub, clock) as cache:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cache.get, KEY)
            await anyio.lowlevel.checkpoint()  # the fetch is asked for
            cache.invalidate("greet")
        await cache.get(KEY)
    assert stub.hits[PATH] == 2


async def test_both_clients_take_the_refresh_mode_and_reject_an_unknown_one(
    stub: StubRegistry,
) -> None:
    for cls in (AsyncPromptLayer, PromptLayer):
        cls(api_key="pl_x", base_url=stub.base_url, cache_ttl_seconds=60,
            cache_refresh="background", cache_max_stale_seconds=30)  # fmt: skip
        with pytest.raises(PromptLayerValidationError, match="cache_refresh='later'"):
            cls(api_key="pl_x", base_url=stub.base_url, cache_refresh="later")  # type: ignore[arg-type]
        with pytest.raises(PromptLayerValidationError, match="cache_max_stale_seconds"):
            cls(api_key="pl_x", base_url=stub.base_url, cache_max_stale_seconds=-1)


async def test_a_caller_after_invalidate_does_not_join_a_fetch_begun_before_it(
    stub: StubRegistry,
) -> None:
    clock = ManualClock()
    async with open_cache(stub, clock) as cache:
        stub.queue(PATH, "hang")
        async with anyio.create_task_group() as tg:
            tg.start_soon(cache.get, KEY)
            await anyio.sleep(0.05)
            stub.publish("greet", chat_template("v2 {name}"))
            cache.invalidate("greet")
            assert text_of(await cache.get(KEY)) == "v2 {name}"
            tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("option", "value"),
    [("cache_ttl_seconds", "300"), ("cache_ttl_seconds", -1),
     ("cache_max_stale_seconds", "60"), ("cache_max_stale_seconds", float("nan"))],
)  # fmt: skip
def test_a_cache_setting_that_is_not_a_number_of_seconds_is_refused_with_its_name(
    stub: StubRegistry, option: str, value: object
) -> None:
    with pytest.raises(PromptLayerValidationError, match=option):
        PromptLayer(api_key="pl_x", base_url=stub.base_url, **{option: value})
