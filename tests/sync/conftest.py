"""Fixtures for the sync client: a real server on loopback, plus a way to run scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from promptrun import PromptLayer
from promptrun.testing import RunningServer

from .._clients import Probe, _instant_retries, example, server


@pytest.fixture
def env(server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PROMPTLAYER_API_KEY": server.api_key,
        "PROMPTLAYER_BASE_URL": server.base_url,
        "PROMPTRUN_SPOOL_DIR": str(tmp_path / "spool"),
        "OPENAI_API_KEY": "sk-sandbox",
        "OPENAI_BASE_URL": server.sandbox_url("openai"),
        "ANTHROPIC_API_KEY": "sk-ant-sandbox",
        "ANTHROPIC_BASE_URL": server.sandbox_url("anthropic"),
        "GEMINI_API_KEY": "gemini-sandbox",
        "GOOGLE_GEMINI_BASE_URL": server.sandbox_url("google"),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def probe(server: RunningServer) -> Probe:
    return Probe(server)


@pytest.fixture
def make_sync(env: dict[str, str]) -> Iterator[Callable[..., PromptLayer]]:
    made: list[PromptLayer] = []

    def make(**kwargs: Any) -> PromptLayer:
        client = PromptLayer(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def run_script(env: dict[str, str]) -> Callable[[str], subprocess.CompletedProcess[str]]:
    def run(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


__all__ = ["Probe", "_instant_retries", "example", "server"]
