"""Provider calls: every supported API shape, and where the provider's base URL comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from promptrun import AsyncPromptLayer
from promptrun.testing import RunningServer

from .._clients import Factory, Probe
from .._registry_stub import chat_template, stub_registry

pytestmark = pytest.mark.anyio


def chat(provider: str, name: str, **model: Any) -> dict[str, Any]:
    return {
        "prompt_template": {
            "type": "chat",
            "input_variables": ["q"],
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "text", "text": "Answer: {q}"}]},
            ],
        },
        "metadata": {"model": {"provider": provider, "name": name, "parameters": {}, **model}},
    }


async def publish(probe: Probe, name: str, version: dict[str, Any]) -> None:
    await probe._call(
        "POST",
        "/rest/prompt-templates",
        {"prompt_template": {"prompt_name": name}, "prompt_version": version},
    )


async def test_openai_responses_api_templates_call_responses_create(
    make_client: Factory, probe: Probe
) -> None:
    await publish(probe, "resp", chat("openai", "gpt-4o-mini", api_type="responses"))
    async with make_client() as pl:
        result = await pl.run("resp", input_variables={"q": "why"})
        items = [i async for i in await pl.run("resp", input_variables={"q": "why"}, stream=True)]
    assert isinstance(result["raw_response"], openai.types.responses.Response)
    assert items[-1]["request_id"]
    message = items[-1]["prompt_blueprint"]["prompt_template"]["messages"][-1]
    assert message["content"][0]["text"] == result["raw_response"].output_text


async def test_openai_completion_templates_call_the_legacy_completions_api(
    make_client: Factory, probe: Probe
) -> None:
    version = {
        "prompt_template": {
            "type": "completion",
            "input_variables": ["q"],
            "content": [{"type": "text", "text": "Complete: {q}"}],
        },
        "metadata": {
            "model": {
                "provider": "openai",
                "name": "gpt-3.5-turbo-instruct",
                "parameters": {"max_tokens": 20},
            }
        },
    }
    await publish(probe, "complete", version)
    async with make_client() as pl:
        result = await pl.run("complete", input_variables={"q": "the sky is"})
    assert isinstance(result["raw_response"], openai.types.Completion)


async def test_azure_openai_runs_with_the_endpoint_from_the_client_option(
    make_client: Factory, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-sandbox-secret")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    await publish(probe, "az", chat("openai.azure", "my-deployment"))
    async with make_client(
        provider_base_urls={"openai.azure": probe.srv.sandbox_url("openai.azure")}
    ) as pl:
        result = await pl.run("az", input_variables={"q": "x"})
        assert await pl.flush(timeout=10)
    assert isinstance(result["raw_response"], openai.types.chat.ChatCompletion)
    [row] = await probe.requests()
    assert row["provider"] == "openai.azure"


async def test_any_openai_compatible_server_through_the_client_option(
    make_client: Factory, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    await publish(probe, "compat", chat("openai", "local-model"))
    async with make_client(provider_base_urls={"openai": probe.srv.sandbox_url("openai")}) as pl:
        result = await pl.run("compat", input_variables={"q": "x"})
    assert result["raw_response"].model == "local-model"


async def test_the_templates_provider_base_url_wins(
    provider_env: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A registry that names the provider's URL (the hosted API's provider_base_url) is
    # obeyed; our server never sets one, so a stub registry plays the hosted API here.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with stub_registry() as stub:
        named = {"url": provider_env.sandbox_url("openai")}
        stub.publish("pbu", {**chat_template("Answer {name}"), "provider_base_url": named})
        async with AsyncPromptLayer(
            api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path
        ) as pl:
            result = await pl.run("pbu", input_variables={"name": "x"})
            assert await pl.flush(timeout=10)
        assert stub.hits["/track-request"] == 1
    assert result["request_id"].startswith("req_")
    assert result["raw_response"].choices[0].message.content


async def test_a_provider_without_its_sdk_key_fails_with_the_sdks_own_message(
    make_client: Factory, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    await publish(probe, "nokey", chat("openai", "gpt-4o-mini"))
    async with make_client() as pl:
        with pytest.raises(openai.OpenAIError, match="OPENAI_API_KEY"):
            await pl.run("nokey", input_variables={"q": "x"})


async def test_an_unknown_provider_is_refused_before_any_network_call(
    make_client: Factory,
) -> None:
    from promptrun import PromptLayerValidationError

    async with make_client(base_url="http://127.0.0.1:9") as pl:  # nothing listens there
        with pytest.raises(PromptLayerValidationError, match="not supported"):
            await pl.run("weird", input_variables={"q": "x"}, provider="cohere", model="c")
