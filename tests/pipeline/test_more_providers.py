"""Bedrock (Converse and Claude), Vertex AI (Gemini and Claude), Mistral and OpenRouter, each
run end to end against its sandbox route in ``promptrun serve``: plain, streamed, logged."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from promptrun.testing import RunningServer

from .._clients import Factory, Probe
from .test_providers import chat, publish

pytestmark = pytest.mark.anyio

# (provider, model, parameters): every provider promptrun reaches through a sandbox route.
CASES = [
    ("amazon.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", {"maxTokens": 200}),
    ("anthropic.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", {"max_tokens": 200}),
    ("vertexai", "gemini-2.5-flash", {"max_output_tokens": 200}),
    ("vertexai", "claude-sonnet-4-5@20250929", {"max_tokens": 200}),
    ("mistral", "mistral-small-latest", {"max_tokens": 200}),
    ("openrouter", "openai/gpt-4o-mini", {"max_tokens": 200}),
    ("openai.azure", "my-deployment", {"max_completion_tokens": 200}),
]
IDS = [
    "amazon.bedrock",
    "anthropic.bedrock",
    "vertex-gemini",
    "vertex-claude",
    "mistral",
    "openrouter",
    "azure",
]


@pytest.fixture
def cloud_env(
    provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> RunningServer:
    """Credentials of the kind each cloud's chain reads, all fake, all offline."""
    srv = provider_env
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASANDBOXEXAMPLE01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret-access-key")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", srv.sandbox_url("amazon.bedrock"))
    monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", srv.sandbox_url("anthropic.bedrock"))
    # Application Default Credentials: a service account whose token endpoint is the sandbox.
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps(service_account(srv.base_url + "/sandbox/vertex/token")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "sandbox-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", srv.sandbox_url("vertexai"))
    for name in ("ANTHROPIC_VERTEX_BASE_URL", "CLOUD_ML_REGION", "ANTHROPIC_VERTEX_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MISTRAL_API_KEY", "mistral-sandbox-secret")
    monkeypatch.setenv("MISTRAL_BASE_URL", srv.sandbox_url("mistral"))
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-sandbox-secret")
    monkeypatch.setenv("OPENROUTER_BASE_URL", srv.sandbox_url("openrouter"))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-sandbox-secret")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", srv.sandbox_url("openai.azure"))
    return srv


@functools.cache
def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account(token_uri: str) -> dict[str, Any]:
    """A service account key file, as the Cloud console hands out, with a throwaway key."""
    return {
        "type": "service_account",
        "project_id": "sandbox-project",
        "private_key_id": "sandbox",
        "private_key": _private_key(),
        "client_email": "sandbox@sandbox-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def version(provider: str, model: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return chat(provider, model, parameters=parameters)


def last_text(item: dict[str, Any]) -> str:
    message = item["prompt_blueprint"]["prompt_template"]["messages"][-1]
    return "".join(p["text"] for p in message["content"] if p.get("type") == "text")


@pytest.mark.parametrize(("provider", "model", "parameters"), CASES, ids=IDS)
async def test_each_provider_runs_plain_and_streamed_and_the_server_logs_both(
    make_client: Factory,
    probe: Probe,
    cloud_env: RunningServer,
    provider: str,
    model: str,
    parameters: dict[str, Any],
) -> None:
    await publish(probe, "p", version(provider, model, parameters))
    async with make_client() as pl:
        plain = await pl.run("p", input_variables={"q": "why is the sky blue"})
        items = [
            i
            async for i in await pl.run(
                "p", input_variables={"q": "why is grass green"}, stream=True
            )
        ]
        assert await pl.flush(timeout=10)
    assert "Sandbox reply to: Answer: why is the sky blue" in last_text(plain)
    assert len(items) > 2, "the sandbox splits a reply into several chunks"
    assert "Sandbox reply to: Answer: why is grass green" in last_text(items[-1])
    rows = await probe.requests()
    assert len(rows) == 2
    for listed in rows:
        row = await probe.request(listed["id"])
        assert row["provider"] == provider
        assert row["model"] == model
        assert row["status"] == "SUCCESS"
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0, row
        messages = row["prompt_blueprint"]["prompt_template"]["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert "Sandbox reply to" in messages[-1]["content"][0]["text"]


@pytest.mark.parametrize("provider", ["amazon.bedrock", "mistral"])
def test_the_sync_client_streams_threaded_and_sdk_streams_alike(
    cloud_env: RunningServer, tmp_path: Path, provider: str
) -> None:
    import anyio

    from promptrun import PromptLayer

    model, parameters = next((m, p) for name, m, p in CASES if name == provider)
    anyio.run(publish, Probe(cloud_env), "s", version(provider, model, parameters))
    with PromptLayer(
        api_key=cloud_env.api_key, base_url=cloud_env.base_url, spool_dir=tmp_path / "spool"
    ) as pl:
        items = list(pl.run("s", input_variables={"q": "sync"}, stream=True))
        assert pl.flush(timeout=10)
    assert items[-1]["request_id"]
    assert "Sandbox reply to: Answer: sync" in last_text(items[-1])


@pytest.mark.parametrize("provider", ["amazon.bedrock", "anthropic.bedrock"])
async def test_aws_credentials_in_a_template_sign_the_call_and_are_never_logged(
    make_client: Factory, probe: Probe, cloud_env: RunningServer, provider: str
) -> None:
    model, parameters = next((m, p) for name, m, p in CASES if name == provider)
    secret = "template-secret-never-logged"
    parameters = {
        **parameters,
        "aws_access_key": "AKIATEMPLATEKEY00001",
        "aws_secret_key": secret,
        "aws_region": "eu-west-1",
    }
    await publish(probe, "creds", version(provider, model, parameters))
    async with make_client() as pl:
        result = await pl.run("creds", input_variables={"q": "x"})
        streamed = [i async for i in await pl.run("creds", input_variables={"q": "y"}, stream=True)]
        assert await pl.flush(timeout=10)
    assert "Sandbox reply" in last_text(result) and "Sandbox reply" in last_text(streamed[-1])
    for listed in await probe.requests():
        row = await probe.request(listed["id"])
        assert secret not in json.dumps(row)
        assert "AKIATEMPLATEKEY00001" not in json.dumps(row)


async def test_aws_credentials_that_are_not_strings_are_refused_before_any_call(
    make_client: Factory, probe: Probe, cloud_env: RunningServer
) -> None:
    from promptrun import PromptLayerValidationError

    model, parameters = CASES[0][1], {"aws_region": {"not": "a string"}}
    await publish(probe, "badcreds", version("amazon.bedrock", model, parameters))
    async with make_client() as pl:
        with pytest.raises(PromptLayerValidationError, match="aws_region"):
            await pl.run("badcreds", input_variables={"q": "x"})
    assert (await probe.sandbox_stats())["stats"]["total"] == 0


def test_importing_promptrun_imports_no_provider_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, promptrun, promptrun.pipeline.providers\n"
        "sdks = {'openai', 'anthropic', 'google', 'boto3', 'botocore', 'mistralai'}\n"
        "print(sorted(sdks & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("provider", ["amazon.bedrock", "anthropic.bedrock", "mistral"])
async def test_a_stream_cut_by_the_provider_raises_and_is_logged_with_what_arrived(
    make_client: Factory, probe: Probe, cloud_env: RunningServer, provider: str
) -> None:
    model, parameters = next((m, p) for name, m, p in CASES if name == provider)
    await publish(probe, "cut", version(provider, model, parameters))
    await probe.sandbox(fail=[{"cut_after_chunks": 2}])
    received = []
    async with make_client() as pl:
        with pytest.raises(Exception):  # noqa: B017  # each SDK names a broken stream its own way
            async for item in await pl.run("cut", input_variables={"q": "x"}, stream=True):
                received.append(item)
        assert await pl.flush(timeout=10)
    assert received, "the chunks before the cut reached the caller"
    [listed] = await probe.requests()
    row = await probe.request(listed["id"])
    assert row["status"] == "ERROR"
    assert "the stream failed after" in row["error_message"]
