"""examples/workflow_run.py publishes the example workflow and runs it both ways."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from promptrun.testing import running_server

from .conftest import PROVIDER_VARS

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.slow
def test_the_workflow_example_runs_on_the_server_and_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The in-process server reads this process's environment: no keys, so its own sandbox.
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        tool_port = free.getsockname()[1]
    tool_url = f"http://127.0.0.1:{tool_port}"
    with running_server(sandbox=True, tool_urls=(tool_url,)) as srv:
        env = {
            **os.environ,
            "PROMPTRUN_EXAMPLE_TOOL_PORT": str(tool_port),
            "PROMPTLAYER_API_KEY": srv.api_key,
            "PROMPTLAYER_BASE_URL": srv.base_url,
            "PROMPTRUN_SPOOL_DIR": str(tmp_path / "spool"),
            "OPENAI_API_KEY": "sk-sandbox",
            "OPENAI_BASE_URL": srv.sandbox_url("openai"),
            "ANTHROPIC_API_KEY": "sk-ant-sandbox",
            "ANTHROPIC_BASE_URL": srv.sandbox_url("anthropic"),
            "GEMINI_API_KEY": "gemini-sandbox",
            "GOOGLE_GEMINI_BASE_URL": srv.sandbox_url("google"),
        }
        outputs = []
        for script in ("publish_templates.py", "workflow_run.py"):
            proc = subprocess.run(
                [sys.executable, str(EXAMPLES / script)],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert proc.returncode == 0, f"{script}:\n{proc.stdout}\n{proc.stderr}"
            outputs.append(proc.stdout)
    out = outputs[1]
    assert "published 'greet-and-summarize' version 1" in out
    assert "server final output: SANDBOX REPLY TO: TEA CEREMONIES" in out
    assert "  note: SKIPPED skipped: conditional 'long_enough' was true" in out
    assert "local execution: greeting=SUCCESS, summary=SUCCESS, stats=SUCCESS" in out
    assert "local final output: SANDBOX REPLY TO: TEA CEREMONIES" in out
