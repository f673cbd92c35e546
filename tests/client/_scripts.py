"""Scripts run as processes of their own against the test server: what they share (the
records they log, how they see the server from inside) and what is checked once they exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from promptrun.testing import RunningServer

from .._clients import Probe, spooled

__all__ = ["LOG", "assert_clean_exit_and_stored", "delivered", "run_script", "script_env"]

# Prepended to every script: the records it logs, and how it sees the server from inside.
LOG = """
import json, os, time, urllib.request
CHAT = {"type": "chat", "messages": []}
def log_args(i):
    return ("openai", "gpt-4o", CHAT, CHAT, time.time(), time.time(), None, [f"exit-{i}"])
def stored_now():
    req = urllib.request.Request(
        os.environ["PROMPTLAYER_BASE_URL"] + "/promptrun/v1/requests?limit=100",
        headers={"X-API-KEY": os.environ["PROMPTLAYER_API_KEY"]},
    )
    return len(json.loads(urllib.request.urlopen(req).read())["items"])
def stored_within(n, seconds=10):
    deadline = time.monotonic() + seconds
    while (seen := stored_now()) != n and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen
"""


@pytest.fixture
def script_env(provider_env: RunningServer, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PROMPTLAYER_API_KEY": provider_env.api_key,
        "PROMPTLAYER_BASE_URL": provider_env.base_url,
        "PROMPTRUN_SPOOL_DIR": str(tmp_path / "spool"),
    }


def run_script(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def delivered(
    env: dict[str, str], probe: Probe, script: str, n: int, *, prints: str | None = None
) -> None:
    """Run LOG + ``script``; once it has exited, exactly its ``n`` records are on the server."""
    proc = run_script(env, LOG + script)
    if prints is not None:
        assert proc.stdout.split() == [prints], proc.stderr
    assert_clean_exit_and_stored(proc, probe, env, n)


def assert_clean_exit_and_stored(
    proc: subprocess.CompletedProcess[str], probe: Probe, env: dict[str, str], n: int
) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Unclosed" not in proc.stderr, proc.stderr
    assert "destroyed but it is pending" not in proc.stderr, proc.stderr
    rows = anyio.run(probe.requests)
    assert len(rows) == n, f"{len(rows)} of {n} records on the server\n{proc.stderr}"
    assert len({r["client_request_id"] for r in rows}) == n  # none twice
    assert spooled(Path(env["PROMPTRUN_SPOOL_DIR"])) == []  # none left waiting
