"""The spec's run() examples name no input_variables: a template's missing variables render as
empty text, as the PromptLayer SDK renders them, with one WARNING per template version naming
them; ``strict_variables=True`` refuses instead. Run verbatim against a template that has
variables (the spec's own ``{variable1} {variable2}``)."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import promptrun
from promptrun.blueprint import MissingVariablesError
from promptrun.testing import RunningServer, running_server

from .conftest import OPENAI_MODEL, SpecServer, example

TEXT = "Tell me about {variable1} and {variable2}."


def _template(text: str = TEXT, template_format: str = "f-string") -> dict[str, Any]:
    return {
        "type": "chat",
        "input_variables": ["variable1", "variable2"],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}],
             "template_format": template_format},
        ],
    }  # fmt: skip


class Registry:
    """A promptrun server whose "your-prompt" uses variables; each publish is a new version."""

    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self.spec = SpecServer(srv)
        self.published = 0

    def publish(self, text: str = TEXT, template_format: str = "f-string") -> int:
        self.published += 1  # the same template again would be the same version
        answer = self.spec._call(
            "POST",
            "/rest/prompt-templates",
            {
                "prompt_template": {"prompt_name": "your-prompt"},
                "prompt_version": {
                    "prompt_template": _template(text, template_format),
                    "metadata": {
                        "model": {"provider": "openai", "name": OPENAI_MODEL, "parameters": {}},
                        "published": self.published,
                    },
                },
            },
        )
        return int(answer["version_number"])

    def first_user_text(self, request_id: Any) -> str:
        stored = self.spec.request(request_id)
        message = stored["prompt_blueprint"]["prompt_template"]["messages"][0]
        return str(message["content"][0]["text"])


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with running_server(sandbox=True) as srv:
        yield Registry(srv)


@pytest.fixture
def env(spec_env: SpecServer, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The spec reader's environment, with PromptLayer being the server above."""
    monkeypatch.setenv("PROMPTLAYER_API_KEY", registry.srv.api_key)
    monkeypatch.setenv("PROMPTLAYER_BASE_URL", registry.srv.base_url)
    return registry


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "promptlayer"
        and r.levelno == logging.WARNING
        and "not given" in r.getMessage()
    ]


def test_the_streaming_example_runs_without_input_variables_and_warns_once_naming_them(
    env: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    version = env.publish()
    ns = example(
        """
        from promptrun import PromptLayer
        pl = PromptLayer()
        for chunk in pl.run(prompt_name="your-prompt", stream=True):
            # Access raw streaming response
            print(chunk["raw_response"])
            # Access progressively built prompt blueprint
            if chunk["prompt_blueprint"]:
                current_response = chunk["prompt_blueprint"]["prompt_template"]["messages"][-1]
                if current_response.get("content"):
                    print(f"Current response: {current_response['content']}")
        """
    )
    assert ns["chunk"]["request_id"] is not None
    assert env.first_user_text(ns["chunk"]["request_id"]) == "Tell me about  and ."
    (warning,) = _warnings(caplog)
    assert "'your-prompt'" in warning and f"version {version}" in warning
    assert "'variable1', 'variable2'" in warning


def test_the_provider_and_model_example_runs_without_input_variables(
    env: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    env.publish()
    ns = example(
        """
        from promptrun import PromptLayer
        pl = PromptLayer()
        response = pl.run(
            prompt_name="your-prompt",
            provider="openai",  # or "anthropic", "google", etc.
            model="gpt-4",  # or "claude-2", "gemini-1.5-pro", etc.
        )
        """
    )
    response = ns["response"]
    assert response["prompt_blueprint"]["metadata"]["model"]["name"] == "gpt-4"
    assert env.first_user_text(response["request_id"]) == "Tell me about  and ."
    assert len(_warnings(caplog)) == 1


def test_a_cached_template_renders_missing_variables_empty_and_warns_once_per_version(
    env: Registry, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    env.publish()
    with promptrun.PromptLayer(cache_ttl_seconds=300) as pl:
        first = pl.run(prompt_name="your-prompt", input_variables={"variable1": "tea"})
        second = pl.run(prompt_name="your-prompt", input_variables={"variable2": None})
        assert len(_warnings(caplog)) == 1  # the same version: said once
        pl.flush()
        assert env.first_user_text(first["request_id"]) == "Tell me about tea and ."
        assert env.first_user_text(second["request_id"]) == "Tell me about  and ."
        newer = env.publish()
        pl.invalidate("your-prompt")
        pl.run(prompt_name="your-prompt")
    warnings = _warnings(caplog)
    assert len(warnings) == 2 and f"version {newer}" in warnings[1]


def test_jinja2_missing_variables_render_empty_and_chain(env: Registry) -> None:
    env.publish("[{{ variable1 }}|{{ variable2.a.b }}|{{ variable1 | upper }}]", "jinja2")
    with promptrun.PromptLayer() as pl:
        response = pl.run(prompt_name="your-prompt")
        pl.flush()
        assert env.first_user_text(response["request_id"]) == "[||]"


def test_strict_variables_refuses_a_run_missing_variables_with_their_names(
    env: Registry,
) -> None:
    env.publish()
    with promptrun.PromptLayer(strict_variables=True) as pl:
        with pytest.raises(MissingVariablesError) as caught:
            pl.run(prompt_name="your-prompt", input_variables={"variable2": "x"})
        assert caught.value.names == ["variable1"]
        assert isinstance(caught.value, promptrun.PromptLayerValidationError)
        assert str(caught.value).startswith("prompt template 'your-prompt' (version ")
        assert "Missing input variable 'variable1'" in str(caught.value)
        answered = pl.run(
            prompt_name="your-prompt", input_variables={"variable1": 1, "variable2": 2}
        )
        assert answered["request_id"] is not None


def test_the_server_renders_a_fetch_with_missing_variables_empty(env: Registry) -> None:
    env.publish()
    request = urllib.request.Request(
        env.srv.base_url + "/prompt-templates/your-prompt",
        data=json.dumps({"input_variables": {}}).encode(),
        headers={"X-API-KEY": env.srv.api_key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["prompt_template"]["messages"][0]["content"][0]["text"] == "Tell me about  and ."
    assert body["llm_kwargs"]["messages"][0]["content"] == "Tell me about  and ."
