"""Prompt nodes of every provider run on the server offline: with no credentials in the
server's environment, each provider's SDK is pointed at the server's own sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from promptrun import AsyncPromptLayer

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
