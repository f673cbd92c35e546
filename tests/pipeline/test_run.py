"""run(): fetch, render, call the provider, log in the background."""

from __future__ import annotations

import asyncio
import logging

import anthropic
import openai
import pytest

from promptrun import AsyncPromptLayer, PromptLayerNotFoundError, PromptLayerValidationError
from promptrun.blueprint import RenderBudgetError

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

TEMPLATE_PATH = "/prompt-templates/greet"
# A fault rule that only counts: how often the registry was asked for the template.
TEMPLATE_FETCHES = {"path": TEMPLATE_PATH, "status": None, "times": None}


def last_text(result: dict) -> str:
    message = result["prompt_blueprint"]["prompt_template"]["messages"][-1]
    return "".join(p.get("text", "") for p in message["content"])


async def test_run_returns_the_provider_answer_at_once_and_logs_it_in_the_background(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        result = await pl.run(
            "greet",
            input_variables={"name": "Ada", "topic": "engines"},
            tags=["t1"],
            metadata={"user": "u1"},
        )
        assert isinstance(result["raw_response"], openai.types.chat.ChatCompletion)
        assert result["request_id"].startswith("req_")
        assert last_text(result) == result["raw_response"].choices[0].message.content
        assert await pl.flush(timeout=10)
        stored = await probe.request(result["request_id"])
    assert stored["tags"] == ["t1"]
    assert stored["metadata"] == {"user": "u1"}
    assert "Ada" in str(stored["prompt_blueprint"])
    assert pl.stats()["shipped"] == 1


async def test_a_hostile_template_from_the_registry_fails_the_run_naming_it(
    make_client: Factory, probe: Probe
) -> None:
    # Someone published a template that would loop for hours; the client renders it locally.
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    for name, text in (("loops", loops), ("wide", "{{ x|center(999999999) }}")):
        await probe._call(
            "POST",
            "/rest/prompt-templates",
            {
                "prompt_template": {"prompt_name": name},
                "prompt_version": {
                    "prompt_template": {"type": "chat", "messages": [{
                        "role": "user", "template_format": "jinja2",
                        "content": [{"type": "text", "text": text}]}]},
                    "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
                },
            },
        )  # fmt: skip
    async with make_client() as pl:
        with pytest.raises(
            RenderBudgetError, match=r"prompt template 'loops'.*time budget"
        ) as slow:
            await pl.run("loops", input_variables={})
        with pytest.raises(
            PromptLayerValidationError, match=r"prompt template 'wide'.*size budget"
        ):
            await pl.run("wide", input_variables={"x": "a"})
        assert pl.stats()["queued"] == 0
    assert slow.value.limit == 1.0


async def test_run_renders_variables_locally_so_one_cached_template_serves_all(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.faults(TEMPLATE_FETCHES)
    async with make_client(cache_ttl_seconds=60) as pl:
        a = await pl.run("greet", input_variables={"name": "Ada", "topic": "x"})
        b = await pl.run("greet", input_variables={"name": "Bob", "topic": "y"})
        c = await pl.run("greet", input_variables={"name": "Cy", "topic": "z"}, metadata={"k": "v"})
    assert (await probe.fault_stats())["hits"][TEMPLATE_PATH] == 1
    texts = [str(r["prompt_blueprint"]["prompt_template"]["messages"][1]) for r in (a, b, c)]
    assert "Ada" in texts[0]
    assert "Bob" in texts[1]
    assert "Cy" in texts[2]


async def test_concurrent_misses_share_one_template_fetch(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.faults(TEMPLATE_FETCHES)
    async with make_client(cache_ttl_seconds=60) as pl:
        results = await asyncio.gather(
            *(pl.run("greet", input_variables={"name": f"n{i}", "topic": "t"}) for i in range(50))
        )
        assert (await probe.fault_stats())["hits"][TEMPLATE_PATH] == 1
        assert len({r["request_id"] for r in results}) == 50
        assert await pl.flush(timeout=10)
    assert len(await probe.requests()) == 50


async def test_anthropic_template_runs_even_with_parameters_the_sdk_no_longer_names(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("haiku")  # carries temperature, which anthropic 2.14 dropped
    async with make_client() as pl:
        result = await pl.run("haiku", input_variables={"subject": "rain"})
    assert isinstance(result["raw_response"], anthropic.types.Message)
    assert "rain" in last_text(result) or last_text(result)


async def test_google_template_runs_through_the_gemini_sdk(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("summarize")
    async with make_client() as pl:
        result = await pl.run("summarize", input_variables={"text": "long text here"})
    assert type(result["raw_response"]).__name__ == "GenerateContentResponse"
    assert last_text(result)


async def test_provider_and_model_override_runs_on_the_other_provider(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        result = await pl.run(
            "greet",
            input_variables={"name": "A", "topic": "b"},
            provider="anthropic",
            model="claude-haiku-4-5",
        )
        assert isinstance(result["raw_response"], anthropic.types.Message)
        assert result["raw_response"].model == "claude-haiku-4-5"


async def test_with_strict_variables_a_missing_variable_is_named_before_any_provider_call(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client(strict_variables=True) as pl:
        with pytest.raises(PromptLayerValidationError, match="topic"):
            await pl.run("greet", input_variables={"name": "A"})
    assert (await probe.sandbox_stats())["stats"]["total"] == 0


async def test_unknown_template_raises_not_found_even_without_throw_on_error(
    make_client: Factory,
) -> None:
    async with make_client(throw_on_error=False) as pl:
        with pytest.raises(PromptLayerNotFoundError, match="nope"):
            await pl.run("nope")


async def test_bad_arguments_fail_before_any_network_call(make_client: Factory) -> None:
    pl = make_client(base_url="http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(PromptLayerValidationError, match="input_variables"):
        await pl.run("greet", input_variables=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(PromptLayerValidationError, match="prompt_name"):
        await pl.run("")
    await pl.aclose()


async def test_provider_rate_limit_reaches_the_caller_unchanged_and_is_logged(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(fail=[{"status": 429, "retry_after": 0, "provider": "openai", "times": 5}])
    async with make_client() as pl:
        with pytest.raises(openai.RateLimitError):
            await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        assert await pl.flush(timeout=10)
    [stored] = await probe.requests()
    assert stored["status"] == "ERROR"
    assert stored["error_type"] == "PROVIDER_RATE_LIMIT"


async def test_template_fetch_retries_5xx_with_warnings_then_succeeds(
    make_client: Factory, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.publish("greet")
    await probe.faults({"path": "/prompt-templates/greet", "status": 503, "times": 2})
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with make_client() as pl:
            result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
    assert result["request_id"]
    assert sum("Retrying in" in r.getMessage() for r in caplog.records) == 2


async def test_template_fetch_does_not_retry_a_4xx(make_client: Factory, probe: Probe) -> None:
    await probe.publish("greet")
    await probe.faults({"path": "/prompt-templates/greet", "status": 403, "times": 5})
    async with make_client() as pl:
        with pytest.raises(Exception, match="403"):
            await pl.run("greet", input_variables={"name": "A", "topic": "b"})
    hits = (await probe.fault_stats())["hits"]
    assert sum(v for k, v in hits.items() if k.startswith("/prompt-templates/greet")) == 1


async def test_throw_on_error_false_turns_a_registry_outage_into_none_and_a_warning(
    make_client: Factory, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    await probe.publish("greet")
    await probe.faults({"path": "/prompt-templates/greet", "status": 500, "times": 10})
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with make_client(throw_on_error=False) as pl:
            assert await pl.run("greet", input_variables={"name": "A", "topic": "b"}) is None
    assert any("WARNING" in r.getMessage() for r in caplog.records)


async def test_an_expired_entry_is_served_stale_while_the_registry_is_down(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client(cache_ttl_seconds=0.05) as pl:
        await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        await probe.faults({"path": "/prompt-templates/greet", "status": 500, "times": 100})
        await asyncio.sleep(0.1)
        result = await pl.run("greet", input_variables={"name": "B", "topic": "c"})
        assert result["request_id"]


async def test_one_client_survives_two_asyncio_runs(make_client: Factory, probe: Probe) -> None:
    await probe.publish("greet")
    pl = make_client()

    def twice() -> list[str]:
        async def once() -> str:
            r = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
            return str(r["request_id"])

        return [asyncio.run(once()), asyncio.run(once())]

    ids = await asyncio.to_thread(twice)
    assert len(set(ids)) == 2
    async with make_client() as other:
        assert await other.flush(timeout=10)  # replays what the first runs spooled, if any
    assert len(await probe.requests()) == 2


async def test_a_cancelled_caller_does_not_break_the_client(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    await probe.sandbox(latency_ms=300)
    async with make_client() as pl:
        task = asyncio.ensure_future(pl.run("greet", input_variables={"name": "A", "topic": "b"}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await probe.sandbox(latency_ms=0)
        result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
        assert result["request_id"]


async def test_inline_logging_returns_the_servers_id_like_the_peer(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    async with make_client(inline_logging=True) as pl:
        result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
    assert isinstance(result["request_id"], int)
    assert (await probe.request(result["request_id"]))["id"] == result["request_id"]


async def test_the_client_starts_on_first_use_without_async_with(
    make_client: Factory, probe: Probe
) -> None:
    await probe.publish("greet")
    pl: AsyncPromptLayer = make_client()
    result = await pl.run("greet", input_variables={"name": "A", "topic": "b"})
    await pl.aclose()
    assert (await probe.request(result["request_id"]))["status"] == "SUCCESS"
