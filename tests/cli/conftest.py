"""CLI tests: ``python -m promptrun`` in a subprocess against a server on loopback."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from promptrun.testing import RunningServer, running_server

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ctrl_c_works() -> None:
    """``preexec_fn`` for a child the test stops with SIGINT: a test run started in the
    background (``cmd &`` in a script, as CI runners may) ignores SIGINT, and its children
    inherit that; the child gets the terminal's default back, as from an interactive shell."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def served() -> Iterator[RunningServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def cli_env(served: RunningServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLAYER_", "OPENAI_"))}
    env.update(
        PROMPTLAYER_BASE_URL=served.base_url,
        PROMPTLAYER_API_KEY=served.api_key,
        PROMPTRUN_SPOOL_DIR=str(tmp_path / "spool"),
        OPENAI_API_KEY="sk-sandbox",
        OPENAI_BASE_URL=served.sandbox_url("openai"),
        ANTHROPIC_API_KEY="sk-ant-sandbox",
        ANTHROPIC_BASE_URL=served.sandbox_url("anthropic"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Cli:
    """Run ``promptrun ARGS...``; returns the finished process (text output)."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "promptrun", *args],
            env={**cli_env, **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    return run


def on_a_terminal(
    args: list[str], env: dict[str, str], which: Literal["stdout", "stderr"] = "stdout"
) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run ``promptrun ARGS`` with ``which`` on a pseudo-terminal (the other one piped): the
    finished process and what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, which: follower}
        done = subprocess.run(
            [sys.executable, "-m", "promptrun", *args], env=env, timeout=60, **streams
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the other end is closed and everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    return done, shown.decode()
