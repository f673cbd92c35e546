"""Fixtures for workflow runs through a real server: one per module, with its sandbox."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from promptrun import AsyncPromptLayer
from promptrun.testing import RunningServer, running_server

GREET = {
    "type": "chat",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hello {name}, about {topic}"}]},
    ],
}
OPENAI = {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}
PROVIDER_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI",
    "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "PROMPTLAYER_API_KEY",
    "PROMPTLAYER_BASE_URL",
)  # fmt: skip


class Server:
    """The module's server, called over plain HTTP the way a test would by hand."""

    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self.base_url = srv.base_url
        self.api_key = srv.api_key

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"X-API-KEY": key or self.api_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert status < 300, (status, answer)
        return answer

    def publish(
        self, name: str, definition: dict[str, Any], labels: list[str] | None = None
    ) -> Any:
        return self.ok(
            "POST",
            "/rest/workflows",
            {"workflow_name": name, "definition": definition, "release_labels": labels or []},
        )

    def publish_greet(self) -> None:
        """The OpenAI template ``greet`` (GREET), labelled ``prod``."""
        self.ok(
            "POST",
            "/rest/prompt-templates",
            {"prompt_template": {"prompt_name": "greet"},
             "prompt_version": {"prompt_template": GREET, "metadata": OPENAI},
             "release_labels": ["prod"]},
        )  # fmt: skip

    def execution(self, execution_id: int | str) -> Any:
        return self.ok("GET", f"/promptrun/v1/workflow-executions/{execution_id}")

    def requests(self) -> list[dict[str, Any]]:
        return self.ok("GET", "/promptrun/v1/requests?limit=1000")["items"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def wf_server() -> Iterator[Server]:
    with running_server(sandbox=True) as srv:
        server = Server(srv)
        server.publish_greet()
        yield server


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4, cap=True):
        yield


@pytest.fixture
def provider_env(wf_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The client's provider keys point at the sandbox."""
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-client-own-key")
    monkeypatch.setenv("OPENAI_BASE_URL", wf_server.srv.sandbox_url("openai"))
    return wf_server


@pytest.fixture
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider key or base URL anywhere: the server falls back to its own sandbox."""
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def client(wf_server: Server, tmp_path: Path) -> AsyncIterator[AsyncPromptLayer]:
    async with AsyncPromptLayer(
        api_key=wf_server.api_key, base_url=wf_server.base_url, spool_dir=tmp_path / "spool"
    ) as pl:
        yield pl
