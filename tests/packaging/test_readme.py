"""The README's "Using it" steps work to the letter, in a fresh virtualenv built from the wheel;
and the sdist and the wheel hold what they should.

The README marks the blocks this runs with ``<!-- readme-test: KIND -->`` on the line before:
``shell-serve`` (``pip install`` and ``promptrun serve``, which keeps running in the
background), ``shell`` (run in a second "terminal" that has the export lines ``promptrun serve``
printed, as the README says to paste them) and ``python`` (a script, run as it is: a reader
copies it into a file); the shell steps run first, then the Python blocks, which use what the
steps published. The one liberty taken: ``promptrun serve`` gets
``--port 0``, since 8765 may be taken on a shared machine; the export lines it prints carry the
port it took, and everything after them runs as written.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).parents[2]
_BLOCK = re.compile(
    r"<!-- readme-test: (?P<kind>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)\n```", re.S
)
_KINDS = {"shell-serve": "sh", "shell": "sh", "python": "python"}


def readme_blocks() -> list[tuple[str, str]]:
    """``(kind, body)`` of every marked block, in README order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = [(m["kind"], m["body"]) for m in _BLOCK.finditer(text)]
    for kind, _ in found:
        assert kind in _KINDS, f"unknown readme-test kind {kind!r}"
    return found


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path
    venv: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist and the wheel (``python -m build``: the wheel is built from the sdist), and a
    fresh virtualenv with the wheel and its ``[all]`` extra installed."""
    root = tmp_path_factory.mktemp("packaging")
    dist = root / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = dist.glob("promptrun-*.tar.gz")
    (wheel,) = dist.glob("promptrun-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[all]"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Built(sdist, wheel, venv)


def test_the_sdist_holds_the_package_and_its_licence_not_benchmarks_or_tests(
    built: Built,
) -> None:
    with tarfile.open(built.sdist) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    assert "LICENSE" in names and "README.md" in names and "pyproject.toml" in names
    assert "runtime/promptrun/examples/templates/greet.json" in names
    assert not [n for n in names if n.startswith(("benchmarks", "tests", "examples/", ".venv"))]


def test_the_wheel_holds_the_example_templates_the_licence_and_py_typed(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
    for example in ("greet", "haiku", "summarize"):
        assert f"promptrun/examples/templates/{example}.json" in names
    assert "promptrun/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_readme_marks_the_steps_it_promises() -> None:
    kinds = [kind for kind, _ in readme_blocks()]
    assert kinds.count("shell-serve") == 1
    assert "shell" in kinds and "python" in kinds
    serve = dict(readme_blocks())["shell-serve"]
    assert "pip install 'promptrun[all]'" in serve and "promptrun serve" in serve


def test_every_python_block_of_the_readme_compiles_as_a_script() -> None:
    # Top-level ``await`` / ``async with`` runs in a notebook but is a SyntaxError in a file.
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)\n```", text, re.S)
    assert blocks
    for body in blocks:
        compile(body, "README.md", "exec")


# -- the README, run ---------------------------------------------------------------------------


class Terminal:
    """A fresh user's shell: the new virtualenv first on PATH, an empty HOME, no PromptLayer
    or provider settings of this machine."""

    def __init__(self, venv: Path, home: Path, cwd: Path) -> None:
        drop = ("PROMPTLAYER_", "PROMPTRUN_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_",
                "MISTRAL_", "OPENROUTER_", "AZURE_", "AWS_", "XDG_", "VIRTUAL_ENV", "PYTHON")  # fmt: skip
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.env.update(
            HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            VIRTUAL_ENV=str(venv), PYTHONUNBUFFERED="1",
        )  # fmt: skip
        self.venv = venv
        self.cwd = cwd

    def sh(self, script: str) -> str:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"$ {script}\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def python(self, source: str) -> str:
        path = self.cwd / "snippet.py"
        path.write_text(source)
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), str(path)],
            env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"{source}\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture
def serving(built: Built, tmp_path: Path) -> Iterator[tuple[Terminal, list[str]]]:
    """Run the ``shell-serve`` block: its commands as written, ``promptrun serve`` in the
    background. Yields the second terminal (with the export lines serve printed, pasted) and
    what serve printed."""
    first = Terminal(built.venv, tmp_path / "home", tmp_path)
    (block,) = [body for kind, body in readme_blocks() if kind == "shell-serve"]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    server: subprocess.Popen[str] | None = None
    printed: list[str] = []
    try:
        for command in filter(None, commands):
            if command.startswith("promptrun serve"):
                server = subprocess.Popen(
                    [*shlex.split(command), "--port", "0"],
                    env=first.env, cwd=tmp_path, text=True,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                )  # fmt: skip
                assert server.stdout is not None
                for line in server.stdout:
                    printed.append(line.rstrip("\n"))
                    if not line.strip() and any(x.startswith("export ") for x in printed):
                        break
            else:
                first.sh(command)
        assert server is not None, "the serve block does not start promptrun serve"
        second = Terminal(built.venv, tmp_path / "home", tmp_path)
        for line in printed:
            if line.startswith("export "):
                second.env.update(pair.split("=", 1) for pair in shlex.split(line)[1:])
        yield second, printed
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.communicate(timeout=30)
            finally:
                server.kill()
        assert server is None or server.returncode == 0, "\n".join(printed)


def test_the_using_it_steps_give_a_first_logged_run(
    serving: tuple[Terminal, list[str]], tmp_path: Path
) -> None:
    second, printed = serving
    said = "\n".join(printed)
    db = tmp_path / "home" / ".local" / "share" / "promptrun" / "promptrun.db"
    assert f"(db {db})" in said and db.is_file()
    assert "/dashboard (sign in with an API key)" in said
    for var in (
        "PROMPTLAYER_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "MISTRAL_BASE_URL",
        "OPENROUTER_BASE_URL",
    ):
        assert var in second.env, f"promptrun serve printed no export of {var}"  # fmt: skip

    outputs = []
    # The steps (shell) first, then the Python: the snippet at the top of the README runs a
    # template that the steps publish.
    blocks = readme_blocks()
    for kind, body in [b for b in blocks if b[0] == "shell"] + [
        b for b in blocks if b[0] != "shell"
    ]:
        if kind == "shell":
            outputs.append(second.sh(body))
        elif kind == "python":
            outputs.append(second.python(body))
    text = "\n".join(outputs)
    assert "pushed greet v1 [prod]" in text
    assert "Sandbox reply to: Say hello to Ada" in text  # quickstart's run of greet (OpenAI)
    assert "Write a haiku about autumn" in text  # the streamed haiku (Anthropic)
    assert "logged as req_" in text  # the Python block's summarize (Gemini)
    assert re.search(r"request req_\w+ \(#1, ", text), text
    # `promptrun logs` (after quickstart and the haiku): a row for each of those runs.
    rows = [line for line in text.splitlines() if re.match(r"#\d+ +\d{4}-", line)]
    assert [row.split()[3] for row in rows] == ["greet", "haiku"], text
