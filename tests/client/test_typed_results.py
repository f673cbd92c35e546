"""Typed results: a user's script type-checks under ``mypy --strict``, and its usual mistakes
do not; at run time the results are still plain dicts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import promptrun

pytestmark = pytest.mark.slow

CORRECT = """
from collections.abc import AsyncIterator, Iterator

from promptrun import (
    AsyncPromptLayer, GetTemplateResult, PromptLayer, PublishResult, RunResult, StreamItem,
)


async def reply(pl: AsyncPromptLayer) -> str:
    result = await pl.run("greet", input_variables={"name": "Ada"})
    text: str = result["prompt_blueprint"]["prompt_template"]["messages"][-1]["content"][0]["text"]
    return text


async def request_id(pl: AsyncPromptLayer) -> str | int:
    result: RunResult = await pl.run("greet")
    return result["request_id"]


async def streamed(pl: AsyncPromptLayer) -> str | int | None:
    last: str | int | None = None
    chunks: AsyncIterator[StreamItem] = await pl.run("greet", stream=True)
    async for chunk in chunks:
        last = chunk["request_id"]
    return last


async def either(pl: AsyncPromptLayer, stream: bool) -> None:
    answer = await pl.run("greet", stream=stream)
    if isinstance(answer, dict):
        print(answer["request_id"])


def sync_side(pl: PromptLayer) -> int:
    for chunk in pl.run("greet", stream=True):
        print(chunk["raw_response"])
    stream: Iterator[StreamItem] = pl.run("greet", stream=True)
    print(next(stream)["prompt_blueprint"])
    template: GetTemplateResult = pl.templates.get("greet", {"label": "prod"})
    print(template["llm_kwargs"], template["version"], template["prompt_template"])
    published: PublishResult = pl.templates.publish(
        {"prompt_name": "x", "prompt_template": {"type": "chat", "messages": []}}
    )
    for item in pl.templates.all():
        print(item["prompt_name"], item["version"])
    logged = pl.log_request("openai", "gpt-4o", {}, {}, 0.0, 1.0)
    print(logged["request_id"], logged["prompt_version"]["metadata"])
    nodes = pl.run_workflow("flow", return_all_outputs=True)
    print(nodes["shout"]["status"], nodes["shout"]["is_output_node"])
    value = pl.run_workflow("flow")
    print(value)
    return published["version_number"] + pl.group.create()
"""

# Each mistake on its own numbered line; the test checks mypy flags exactly those lines.
MISTAKES = {
    "missing async in a for over an async stream": (
        "    for chunk in await pl.run('greet', stream=True): print(chunk)"
    ),
    "indexing a key a run result does not have": "    print(result['requestid'])",
    "treating a stream as a dict": "    print((await pl.run('greet', stream=True))['request_id'])",
    "a sync stream used as a dict": "    print(sync.run('greet', stream=True)['request_id'])",
    "a template field that does not exist": "    print(sync.templates.get('x')['versions'])",
    "a run result returned as a str": "    wrong: str = result['request_id']",
    "a node result field that does not exist": (
        "    print(sync.run_workflow('f', return_all_outputs=True)['n']['output'])"
    ),
}


def _mypy(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", os.devnull, "--python-version", "3.11", str(path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip


def test_a_users_correct_script_passes_mypy_strict(tmp_path: Path) -> None:
    done = _mypy(tmp_path, "correct.py", CORRECT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout


def test_mypy_strict_catches_the_usual_mistakes_each_on_its_line(tmp_path: Path) -> None:
    header = [
        "from promptrun import AsyncPromptLayer, PromptLayer",
        "",
        "async def main(pl: AsyncPromptLayer, sync: PromptLayer) -> None:",
        "    result = await pl.run('greet')",
    ]
    lines = header + list(MISTAKES.values())
    done = _mypy(tmp_path, "mistakes.py", "\n".join(lines) + "\n")
    flagged = {int(n) for n in re.findall(r"mistakes\.py:(\d+): error", done.stdout)}
    for number, (what, line) in enumerate(MISTAKES.items(), len(header) + 1):
        assert number in flagged, f"mypy missed {what}: {line.strip()}\n{done.stdout}"
    assert flagged <= set(range(len(header) + 1, len(lines) + 1)), done.stdout


def test_the_result_types_are_exported_and_the_public_names_sorted() -> None:
    for name in (
        "RunResult",
        "StreamItem",
        "GetTemplateResult",
        "PublishResult",
        "TemplateListItem",
        "LogRequestResult",
        "WorkflowNodeResult",
        "PromptBlueprint",
    ):
        assert name in promptrun.__all__  # fmt: skip
    assert promptrun.__all__ == sorted(promptrun.__all__)
    public = {n for n in vars(promptrun) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(promptrun, n)).__name__ == "module"}
    assert set(promptrun.__all__) - {"__version__"} == public - modules - {"annotations"}
