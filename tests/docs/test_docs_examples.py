"""The docs' code runs as written: every Python block of docs/*.md is a script that compiles,
and docs/workflows.md's steps (publish with curl, then its Python) run against a default
``promptrun serve`` (its sandbox providers, no ``--tool-url``), as a reader would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptrun.testing import running_server

from ..workflows.conftest import PROVIDER_VARS

REPO = Path(__file__).parents[2]
DOCS = sorted((REPO / "docs").glob("*.md"))


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)\n```", path.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_python_block_of_the_docs_compiles_as_a_script(doc: Path) -> None:
    for body in blocks(doc, "python"):
        compile(body, str(doc.name), "exec")  # top-level await would be a SyntaxError


@pytest.mark.slow
def test_the_workflow_docs_publish_and_run_it_steps_run_against_a_default_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROVIDER_VARS:  # the in-process server reads this environment: its sandbox
        monkeypatch.delenv(name, raising=False)
    doc = REPO / "docs" / "workflows.md"
    with running_server(sandbox=True) as srv:
        # What `promptrun serve` prints to export, as the README says to paste it.
        env = {
            **os.environ,
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

        def run(*command: str) -> str:
            done = subprocess.run(
                command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            return done.stdout

        run(sys.executable, "-m", "promptrun", "templates", "push", "--examples")
        [publish] = [b for b in blocks(doc, "bash") if "/rest/workflows" in b]
        assert '"success":true' in run("bash", "-e", "-c", publish)
        outputs = [run(sys.executable, "-c", body) for body in blocks(doc, "python")]
    assert outputs, "docs/workflows.md has no Python block"
    statuses, local = outputs[0].splitlines()[-2:]
    assert "'greeting': 'SUCCESS'" in statuses and "'summary': 'SUCCESS'" in statuses
    assert local.startswith("SANDBOX REPLY TO") or local == "short and sweet", local
