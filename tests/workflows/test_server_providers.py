"""Prompt nodes of every provider run on the server offline: with no credentials in the
server's environment, each provider's SDK is pointed at the server's own sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promptrun import AsyncPromptLayer
from promptrun.testing import ServerProcess
from tests._records import comparable

from .conftest import GREET, Server

pytestmark = pytest.mark.anyio

MODELS = {
    "amazon.bedrock": ("anthropic.claude-3-5-haiku-20241022-v1:0", {}),
    "anthropic.bedrock": ("anthropic.claude-3-5-haiku-20241022-v1:0", {"max_tokens": 50}),
    "vertexai": ("gemini-2.5-flash", {}),
    "mistral": ("mistral-small-latest", {}),
    "openrouter": ("openai/gpt-4o-mini", {}),
}
CLOUD_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "ANTHROPIC_BEDROCK_BASE_URL",
    "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_VERTEX_BASE_URL", "MISTRAL_API_KEY",
    "MISTRAL_BASE_URL", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL",
)  # fmt: skip


async def test_prompt_nodes_of_each_provider_fall_back_to_the_servers_sandbox(
    wf_server: Server,
    no_provider_env: None,
    client: AsyncPromptLayer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in CLOUD_VARS:
        monkeypatch.delenv(name, raising=False)
    nodes: list[dict[str, Any]] = []
    for provider, (model, parameters) in MODELS.items():
        name = "greet-" + provider.replace(".", "-")
        wf_server.ok(
            "POST",
            "/rest/prompt-templates",
            {
                "prompt_template": {"prompt_name": name},
                "prompt_version": {
                    "prompt_template": GREET,
                    "metadata": {
                        "model": {"provider": provider, "name": model, "parameters": parameters}
                    },
                },
            },
        )
        nodes.append(
            {
                "name": name,
                "type": "prompt_template",
                "configuration": {"prompt_name": name},
                "inputs": {"name": "topic", "topic": "topic"},
                "is_output_node": True,
            }
        )
    wf_server.publish("every-provider", {"input_variables": ["topic"], "nodes": nodes})
    results = await client.run_workflow(
        "every-provider", {"topic": "rain"}, return_all_outputs=True
    )
    for provider in MODELS:
        result = results["greet-" + provider.replace(".", "-")]
        assert result["status"] == "SUCCESS", result
        assert "Sandbox reply to: Hello rain, about rain" in result["value"]
    logged = {row["provider"] for row in wf_server.requests()}
    assert set(MODELS) <= logged


async def test_prompt_nodes_call_the_sandbox_natively_and_log_what_the_sdk_path_logs(
    wf_server: Server, no_provider_env: None, tmp_path: Path
) -> None:
    node = {
        "name": "hello",
        "type": "prompt_template",
        "configuration": {"prompt_name": "greet", "label": "prod"},
        "inputs": {"name": "topic", "topic": "topic"},
        "is_output_node": True,
    }
    seen = []
    # The documented command, literally: `promptrun serve --no-native-transport`.
    with ServerProcess(tmp_path / "sdk.db", args=["--no-native-transport"]) as proc:
        sdk_server = Server(proc)  # type: ignore[arg-type]  # has base_url and api_key too
        sdk_server.publish_greet()
        for server in (wf_server, sdk_server):
            server.publish("native-or-sdk", {"input_variables": ["topic"], "nodes": [node]})
            async with AsyncPromptLayer(
                api_key=server.api_key, base_url=server.base_url, spool_dir=tmp_path / "spool"
            ) as client:
                result = await client.run_workflow("native-or-sdk", {"topic": "rain"})
            assert "Sandbox reply to: Hello rain, about rain" in result
            agent = server.ok("GET", "/sandbox/_control")["stats"]["recent"][-1]["user_agent"]
            logged = server.requests()[0]  # the newest
            assert logged["metadata"]["workflow_node_name"] == "hello"
            metadata = logged.pop("metadata")
            metadata.pop("workflow_version_execution_id")  # each server's own
            seen.append((agent, comparable(logged), metadata))
    (native_agent, native_logged, native_meta), (sdk_agent, sdk_logged, sdk_meta) = seen
    assert sdk_agent.startswith("AsyncOpenAI/Python")  # the SDK's telemetry
    assert native_agent is None  # the native transport sends none
    assert native_meta == sdk_meta
    assert native_logged == sdk_logged
