"""Fixtures for the spec's examples: a promptrun server with the templates they name, the
environment a reader of the spec would set, a stub registry that fails on demand, and ways to
run an example's code verbatim, in this process or as a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

import promptrun
from promptrun.testing import RunningServer, running_server

from .._clock import ManualClock as ManualClock
from .._registry_stub import StubRegistry, chat_template, stub_registry

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"  # no provider SDK warns about these models
GOOGLE_MODEL = "gemini-2.5-flash"


def _chat(*texts: tuple[str, str], variables: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "chat",
        "input_variables": variables or [],
        "messages": [
            {"role": role, "content": [{"type": "text", "text": text}],
             "template_format": "f-string"}
            for role, text in texts
        ],
    }  # fmt: skip


TEMPLATES: dict[str, dict[str, Any]] = {
    "your-prompt": {
        "prompt_template": _chat(("system", "You are terse."), ("user", "Say hello.")),
        "metadata": {"model": {"provider": "openai", "name": OPENAI_MODEL, "parameters": {}}},
    },
    "TestPrompt": {
        "prompt_template": _chat(
            ("user", "Tell me about {variable1} and {variable2}."),
            variables=["variable1", "variable2"],
        ),
        "metadata": {"model": {"provider": "openai", "name": OPENAI_MODEL, "parameters": {}}},
    },
    "claude-prompt": {
        "prompt_template": _chat(("user", "Say hello.")),
        "metadata": {
            "model": {
                "provider": "anthropic",
                "name": ANTHROPIC_MODEL,
                "parameters": {"max_tokens": 256},
            }
        },
    },
    "gemini-prompt": {
        "prompt_template": _chat(("user", "Say hello.")),
        "metadata": {"model": {"provider": "google", "name": GOOGLE_MODEL, "parameters": {}}},
    },
}

WORKFLOW = {
    "input_variables": ["text"],
    "nodes": [
        {"name": "shout", "type": "code", "configuration": {"code": "return text.upper()"},
         "inputs": {"text": "text"}},
        {"name": "count", "type": "code", "configuration": {"code": "return len(s)"},
         "inputs": {"s": "shout"}, "is_output_node": True},
    ],
}  # fmt: skip


class SpecServer:
    """The module's promptrun server, and its request log read through its own API."""

    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self.base_url = srv.base_url
        self.api_key = srv.api_key

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-API-KEY": self.api_key, "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def requests(self) -> list[dict[str, Any]]:
        """Every stored request in full, newest first."""
        page = self._call("GET", "/promptrun/v1/requests?limit=1000")
        return [self.request(item["id"]) for item in page["items"]]

    def request(self, request_id: int | str) -> dict[str, Any]:
        return self._call("GET", f"/promptrun/v1/requests/{request_id}")  # type: ignore[no-any-return]

    def sandbox_url(self, provider: str) -> str:
        return self.srv.sandbox_url(provider)


@pytest.fixture(scope="package")
def spec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpecServer]:
    with running_server(sandbox=True) as srv:
        server = SpecServer(srv)
        client = promptrun.PromptLayer(
            api_key=srv.api_key,
            base_url=srv.base_url,
            spool_dir=tmp_path_factory.mktemp("publish-spool"),
        )
        try:
            for name, body in TEMPLATES.items():
                client.templates.publish(
                    {"prompt_name": name, "commit_message": "for the spec", **body}
                )
        finally:
            client.close()
        server._call(
            "POST", "/rest/workflows", {"workflow_name": "spec-workflow", "definition": WORKFLOW}
        )
        yield server


@pytest.fixture
def spec_env(
    spec_server: SpecServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> SpecServer:
    """The environment a reader of the spec sets: the PromptLayer key and URL, provider keys
    (and, to stay offline, the providers' base URLs pointing at the sandbox)."""
    env = {
        "PROMPTLAYER_API_KEY": spec_server.api_key,
        "PROMPTLAYER_BASE_URL": spec_server.base_url,
        "OPENAI_API_KEY": "sk-spec-openai-secret",
        "OPENAI_BASE_URL": spec_server.sandbox_url("openai"),
        "ANTHROPIC_API_KEY": "sk-ant-spec-secret",
        "ANTHROPIC_BASE_URL": spec_server.sandbox_url("anthropic"),
        "GEMINI_API_KEY": "gemini-spec-secret",
        "GOOGLE_GEMINI_BASE_URL": spec_server.sandbox_url("google"),
        "PROMPTRUN_SPOOL_DIR": str(tmp_path / "spool"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "OPENAI_ORG_ID",
                 "PROMPTLAYER_HTTP_TIMEOUT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return spec_server


@pytest.fixture
def stub(spec_env: SpecServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubRegistry]:
    """A stub PromptLayer API in place of the server (providers stay on the sandbox)."""
    with stub_registry() as registry:
        for name in ("TestPrompt", "your-prompt"):
            registry.publish(name, chat_template("Say hello.", model=OPENAI_MODEL))
        monkeypatch.setenv("PROMPTLAYER_BASE_URL", registry.base_url)
        yield registry


@pytest.fixture
def instant_retries() -> Iterator[None]:
    """The spec's 4 attempts, without its 2 + 4 + 8 s of waiting."""
    with stamina.set_testing(True, attempts=4, cap=True):
        yield


def example(code: str, *, keep_open: bool = False) -> dict[str, Any]:
    """Run an example's code in this process; returns its variables. Sync clients it made and
    left open are closed afterwards, as its process ending would (unless ``keep_open``: then
    the test's glue uses them and closes them)."""
    ns: dict[str, Any] = {"__name__": "__spec_example__"}
    try:
        exec(compile(textwrap.dedent(code), "<spec example>", "exec"), ns)
    finally:
        if not keep_open:
            for value in list(ns.values()):
                if isinstance(value, promptrun.PromptLayer):
                    value.close()
    return ns


def script(code: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run an example's code as a script of its own, in this test's environment."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def use_clock(client: promptrun.PromptLayer, clock: Any) -> None:
    """Glue: start the client's runtime and put its template cache on ``clock``."""
    inner = client._async_client()
    client._call(inner._runtime_here)
    assert inner._runtime is not None
    inner._runtime.templates.clock = clock
