"""A missing or refused provider key: an error naming the provider, the template and the
variable to set, in the SDK's own exception class, and a failed request in the log."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from botocore.exceptions import NoCredentialsError
from mistralai.client.errors import MistralError

from promptrun.pipeline.providers import ProviderKeyError
from promptrun.testing import RunningServer

from .._clients import Factory, Probe
from .test_more_providers import cloud_env, publish, version  # noqa: F401

pytestmark = pytest.mark.anyio

# provider, model, parameters, the variables to remove, the variable named, the SDK's class
MISSING = [
    ("openai", "gpt-4o-mini", {}, ["OPENAI_API_KEY"], "OPENAI_API_KEY", openai.OpenAIError),
    (
        "openai.azure", "my-deployment", {}, ["AZURE_OPENAI_API_KEY"], "AZURE_OPENAI_API_KEY",
        openai.OpenAIError,
    ),
    (
        "openrouter", "openai/gpt-4o-mini", {}, ["OPENROUTER_API_KEY"], "OPENROUTER_API_KEY",
        openai.OpenAIError,
    ),
    ("mistral", "mistral-small-latest", {}, ["MISTRAL_API_KEY"], "MISTRAL_API_KEY", MistralError),
    (
        "anthropic", "claude-sonnet-4-6", {"max_tokens": 50}, ["ANTHROPIC_API_KEY"],
        "ANTHROPIC_API_KEY", TypeError,
    ),
    (
        "anthropic.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", {"max_tokens": 50},
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "AWS_ACCESS_KEY_ID", RuntimeError,
    ),
    (
        "amazon.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", {},
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "AWS_ACCESS_KEY_ID", NoCredentialsError,
    ),
    (
        "openai.azure", "my-deployment", {}, ["OPENAI_API_VERSION"], "OPENAI_API_VERSION",
        Exception,  # ValueError in openai 3.x, OpenAIError before
    ),
    ("google", "gemini-2.5-flash", {}, ["GEMINI_API_KEY"], "GEMINI_API_KEY", ValueError),
    (
        "vertexai", "claude-sonnet-4-5@20250929", {"max_tokens": 50},
        ["GOOGLE_APPLICATION_CREDENTIALS"], "GOOGLE_APPLICATION_CREDENTIALS", Exception,
    ),
    (
        "vertexai", "gemini-2.5-flash", {}, ["GOOGLE_APPLICATION_CREDENTIALS"],
        "GOOGLE_APPLICATION_CREDENTIALS", Exception,
    ),
]  # fmt: skip


@pytest.fixture
def no_cloud_fallbacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing outside the test's environment may supply credentials (nor be asked for them)."""
    import google.auth.compute_engine._metadata as gce
    from anthropic.lib.aws._auth import _get_session

    monkeypatch.setattr(gce, "_NO_GCE_CHECK", True)  # never ask a metadata server
    # anthropic keeps one boto3 Session (with the credentials it found) per process.
    _get_session.cache_clear()
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")


@pytest.mark.parametrize(
    ("provider", "model", "parameters", "remove", "variable", "sdk_class"),
    MISSING,
    ids=[f"{case[0]}-{case[4]}-{case[1]}" for case in MISSING],
)
async def test_a_missing_key_names_the_variable_keeps_the_sdks_class_and_is_logged(
    make_client: Factory,
    probe: Probe,
    cloud_env: RunningServer,  # noqa: F811
    no_cloud_fallbacks: None,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    model: str,
    parameters: dict[str, Any],
    remove: list[str],
    variable: str,
    sdk_class: type[BaseException],
) -> None:
    for name in remove:
        monkeypatch.delenv(name, raising=False)
    await publish(probe, "nokey", version(provider, model, parameters))
    urls = {"openai.azure": cloud_env.sandbox_url("openai.azure")}
    async with make_client(provider_base_urls=urls) as pl:
        for stream in (False, True):
            with pytest.raises(sdk_class) as caught:
                result = await pl.run("nokey", input_variables={"q": "x"}, stream=stream)
                if stream:  # some SDKs send the request at the first read
                    [item async for item in result]
            error = caught.value
            text = str(error)
            assert isinstance(error, ProviderKeyError), repr(error)
            assert f"{variable} is not set" in text
            assert "template 'nokey'" in text and f"provider '{provider}'" in text
            assert isinstance(error.__cause__, sdk_class)  # the SDK's own error, chained
            assert not isinstance(error.__cause__, ProviderKeyError)
        assert await pl.flush(timeout=10)
    rows = await probe.requests()
    assert [r["status"] for r in rows] == ["ERROR", "ERROR"]
    for listed in rows:
        row = await probe.request(listed["id"])
        assert row["provider"] == provider
        assert row["error_type"] == "PROVIDER_AUTH_ERROR"
        assert variable in row["error_message"]


@pytest.mark.parametrize(
    ("provider", "model", "parameters", "sdk_class"),
    [
        ("openai", "gpt-4o-mini", {}, openai.AuthenticationError),
        ("anthropic", "claude-sonnet-4-6", {"max_tokens": 50}, anthropic.AuthenticationError),
        ("openrouter", "openai/gpt-4o-mini", {}, openai.AuthenticationError),
        ("mistral", "mistral-small-latest", {}, MistralError),
    ],
)
async def test_a_refused_key_says_which_variable_to_check_and_keeps_the_status_error(
    make_client: Factory,
    probe: Probe,
    cloud_env: RunningServer,  # noqa: F811
    provider: str,
    model: str,
    parameters: dict[str, Any],
    sdk_class: type[BaseException],
) -> None:
    from promptrun.pipeline.providers import TABLE

    await publish(probe, "badkey", version(provider, model, parameters))
    await probe.sandbox(fail=[{"status": 401}])
    async with make_client() as pl:
        with pytest.raises(sdk_class) as caught:
            await pl.run("badkey", input_variables={"q": "x"})
    error = caught.value
    assert getattr(error, "status_code", None) == 401  # the SDK's attributes are still there
    variable = TABLE[provider].key_var
    assert f"check {variable}" in str(error) and "template 'badkey'" in str(error)
    assert "refused the credentials (HTTP 401)" in str(error)


def test_an_explained_error_pickles_as_the_sdks_class_with_its_message() -> None:
    from promptrun.pipeline.providers._base import KeyProblem
    from promptrun.pipeline.providers._keys import explain_key_problem
    from promptrun.pipeline.providers._table import TABLE

    original = TypeError('Could not resolve authentication method. Expected "api_key"')
    problem = KeyProblem("missing", "ANTHROPIC_API_KEY")
    error = explain_key_problem(original, problem, TABLE["anthropic"], "greet")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, TypeError) and isinstance(copy, ProviderKeyError)
    assert str(copy) == str(error)
    assert str(error).startswith("ANTHROPIC_API_KEY is not set: template 'greet' runs on")
    assert "export ANTHROPIC_API_KEY=..." in str(error)
    assert "Could not resolve authentication method" in str(error)


@pytest.mark.parametrize(
    ("base_url", "sandbox"),
    [
        ("http://127.0.0.1:18800", "http://127.0.0.1:18800/sandbox/openai/v1"),
        ("http://devbox:9000/", "http://devbox:9000/sandbox/openai/v1"),
        ("https://api.promptlayer.com", "http://127.0.0.1:8765/sandbox/openai/v1"),
        (None, "http://127.0.0.1:8765/sandbox/openai/v1"),
    ],
)
def test_the_offline_advice_points_at_the_server_this_process_logs_to(
    monkeypatch: pytest.MonkeyPatch, base_url: str | None, sandbox: str
) -> None:
    from promptrun.pipeline.providers import TABLE
    from promptrun.pipeline.providers._base import KeyProblem
    from promptrun.pipeline.providers._keys import message_for

    if base_url is None:
        monkeypatch.delenv("PROMPTLAYER_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("PROMPTLAYER_BASE_URL", base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    text = message_for(KeyProblem("missing", "OPENAI_API_KEY"), TABLE["openai"], "t", "no key")
    assert f"point OPENAI_BASE_URL at `promptrun serve`'s sandbox ({sandbox})" in text
