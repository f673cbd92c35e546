"""Every example in examples/ runs against a local server and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptrun.testing import RunningServer, running_server

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def env(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    values = {
        **os.environ,
        "PROMPTLAYER_API_KEY": server.api_key,
        "PROMPTLAYER_BASE_URL": server.base_url,
        "PROMPTRUN_SPOOL_DIR": str(tmp_path_factory.mktemp("spool")),
        "OPENAI_API_KEY": "sk-sandbox",
        "OPENAI_BASE_URL": server.sandbox_url("openai"),
        "ANTHROPIC_API_KEY": "sk-ant-sandbox",
        "ANTHROPIC_BASE_URL": server.sandbox_url("anthropic"),
        "GEMINI_API_KEY": "gemini-sandbox",
        "GOOGLE_GEMINI_BASE_URL": server.sandbox_url("google"),
    }
    values.pop("GOOGLE_API_KEY", None)
    published = run(values, "publish_templates.py")
    assert "published 'greet' version 1" in published
    return values


def run(env: dict[str, str], *argv: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / argv[0]), *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{argv[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_sync_quickstart_runs_streams_logs_and_handles_errors(env: dict[str, str]) -> None:
    out = run(env, "sync_quickstart.py")
    assert "reply: " in out
    assert "streamed request id: req_" in out
    assert "Template not found:" in out
    assert "missing template gives: None" in out


def test_async_streaming_prints_the_reply_then_its_request_id(env: dict[str, str]) -> None:
    out = run(env, "async_streaming.py")
    assert "request id: req_" in out


def test_async_web_service_serves_concurrent_requests(env: dict[str, str]) -> None:
    out = run(env, "async_web_service.py", "--selftest", "40")
    assert "served 40 concurrent requests, 40 distinct request ids" in out


@pytest.mark.parametrize("script", ["log_request_openai.py", "log_request_anthropic.py"])
def test_fire_and_forget_logging_around_your_own_provider_call(
    env: dict[str, str], script: str
) -> None:
    assert "logged as req_" in run(env, script)


def test_a_thread_pool_shares_one_sync_client(env: dict[str, str]) -> None:
    out = run(env, "sync_thread_pool.py")
    assert "32 runs from 8 threads" in out
    assert "'shipped': 32" in out
