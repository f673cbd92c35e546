"""Fixtures for client tests: a real promptrun server with its sandbox providers on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stamina

from promptrun import AsyncPromptLayer
from promptrun.examples import TEMPLATES
from promptrun.testing import RunningServer, running_server


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    # Keep the spec's 4 attempts but make the waits instant.
    with stamina.set_testing(True, attempts=4, cap=True):
        yield


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with running_server(fault_injection=True) as srv:
        yield srv


@pytest.fixture
def provider_env(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox-openai-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", server.sandbox_url("openai"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-sandbox-secret")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.sandbox_url("anthropic"))
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-sandbox-secret")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.sandbox_url("google"))
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    monkeypatch.delenv("PROMPTLAYER_API_KEY", raising=False)
    monkeypatch.delenv("PROMPTLAYER_BASE_URL", raising=False)
    return server


@pytest.fixture
def make_client(provider_env: RunningServer, tmp_path: Path) -> Callable[..., AsyncPromptLayer]:
    def make(**kwargs: Any) -> AsyncPromptLayer:
        kwargs.setdefault("api_key", provider_env.api_key)
        kwargs.setdefault("base_url", provider_env.base_url)
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        return AsyncPromptLayer(**kwargs)

    return make


def start_then_kill_9(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``code`` in a new interpreter until it prints a line of ids, then kill -9 it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    ids = proc.stdout.readline().split()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    return ids


def spooled(folder: Path) -> list[bytes]:
    """The records a spool folder still holds (read as an outsider would: the file format)."""
    records: list[bytes] = []
    for path in sorted(folder.rglob("*.seg")):
        data = path.read_bytes()
        header = data[: data.index(b"\n")]
        acked = int(header.rsplit(b"=", 1)[1])
        records += [line for line in data[acked:].split(b"\n") if line]
    return records


def example(name: str) -> dict[str, Any]:
    return json.loads((TEMPLATES / f"{name}.json").read_text())  # type: ignore[no-any-return]


class Probe:
    """Looks at and steers the server from the side, as a test would by hand."""

    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self._key = {"X-API-KEY": srv.api_key}

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                method,
                self.srv.base_url + path,
                json=body,
                headers=self._key,
            ) as r,
        ):
            text = await r.text()
            assert r.status < 400, f"{method} {path}: {r.status} {text}"
            return json.loads(text) if text else None

    async def publish(self, *names: str) -> None:
        for name in names:
            body = example(name)
            await self._call(
                "POST",
                "/rest/prompt-templates",
                {
                    "prompt_template": {"prompt_name": body["prompt_name"], "tags": body["tags"]},
                    "prompt_version": {
                        "prompt_template": body["prompt_template"],
                        "metadata": body["metadata"],
                        "commit_message": body["commit_message"],
                    },
                    "release_labels": body["release_labels"],
                },
            )

    async def request(self, request_id: str | int) -> dict[str, Any]:
        return await self._call("GET", f"/promptrun/v1/requests/{request_id}")  # type: ignore[no-any-return]

    async def requests(self) -> list[dict[str, Any]]:
        answer = await self._call("GET", "/promptrun/v1/requests?limit=1000")
        return answer["items"]  # type: ignore[no-any-return]

    async def faults(self, *rules: dict[str, Any]) -> None:
        await self._call("POST", "/promptrun/v1/_faults", {"rules": list(rules)})

    async def fault_stats(self) -> dict[str, Any]:
        return await self._call("GET", "/promptrun/v1/_faults")  # type: ignore[no-any-return]

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/promptrun/v1/_faults")

    async def sandbox(self, **control: Any) -> None:
        async with (
            aiohttp.ClientSession() as s,
            s.post(self.srv.base_url + "/sandbox/_control", json=control, headers=self._key) as r,
        ):
            assert r.status < 400, await r.text()

    async def sandbox_stats(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as s,
            s.get(self.srv.base_url + "/sandbox/_control", headers=self._key) as r,
        ):
            return await r.json()  # type: ignore[no-any-return]


@pytest.fixture
def probe(provider_env: RunningServer) -> Probe:
    return Probe(provider_env)


Factory = Callable[..., AsyncPromptLayer]
Waiter = Callable[[], Awaitable[None]]
