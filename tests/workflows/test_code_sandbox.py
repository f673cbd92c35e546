"""Code nodes: a value back, limits enforced, and nothing secret within reach."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from promptrun.workflows._code_sandbox import run_code
from promptrun.workflows.nodes import NodeError

pytestmark = pytest.mark.anyio

SECRET = "sk-this-must-never-leak-1234567890"

SNOOP = r"""
import os
found = {"environ": dict(os.environ), "refused": {}}
for label, path in [
    ("own environ", "/proc/self/environ"),
    ("parent environ", "/proc/%d/environ" % os.getppid()),
    ("secret file", secret_file),
    ("secret file via ..", "../" * 30 + secret_file.lstrip("/")),
]:
    try:
        with open(path, "rb") as f:
            found[label] = f.read().decode("utf-8", "replace")
    except Exception as exc:
        found["refused"][label] = type(exc).__name__
for name, attempt in [
    ("listdir", lambda: os.listdir(os.path.dirname(secret_file))),
    ("os.open", lambda: os.open(secret_file, os.O_RDONLY)),
    ("pathlib", lambda: __import__("pathlib").Path(secret_file).read_text()),
    ("symlink", lambda: os.symlink(secret_file, "link")),
    ("system", lambda: os.system("cat " + secret_file)),
    ("subprocess", lambda: __import__("subprocess").run(["cat", secret_file])),
    ("socket", lambda: __import__("socket").create_connection(("127.0.0.1", 9))),
    ("ctypes", lambda: __import__("ctypes")),
    ("kill parent", lambda: os.kill(os.getppid(), 0)),
]:
    try:
        found[name] = repr(attempt())
    except Exception as exc:
        found["refused"][name] = type(exc).__name__
return found
"""


async def test_a_code_node_returns_its_json_value_with_inputs_in_scope() -> None:
    value = await run_code(
        "import statistics\nreturn {'mean': statistics.mean(xs), 'who': name.upper()}",
        {"xs": [1, 2, 3], "name": "ada"},
        timeout=5,
    )
    assert value == {"mean": 2, "who": "ADA"}


async def test_a_code_node_trying_to_read_secrets_gets_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTRUN_TEST_SECRET", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    found = await run_code(SNOOP, {"secret_file": str(secret_file)}, timeout=10)
    assert SECRET not in repr(found)
    # the environment is empty (Python may set its own locale variable, nothing else)
    assert set(found["environ"]) <= {"LC_CTYPE"}
    assert set(found["refused"]) == {
        "own environ", "parent environ", "secret file", "secret file via ..", "listdir",
        "os.open", "pathlib", "symlink", "system", "subprocess", "socket", "ctypes",
        "kill parent",
    }  # fmt: skip
    assert set(found["refused"].values()) <= {"PermissionError", "ImportError"}


async def test_a_code_node_may_use_files_in_its_own_folder_which_is_gone_afterwards() -> None:
    where = await run_code(
        "import os\nwith open('notes.txt', 'w') as f:\n    f.write('hi')\n"
        "os.mkdir('sub')\nreturn [open('notes.txt').read(), os.getcwd(), sorted(os.listdir('.'))]",
        {},
        timeout=5,
    )
    assert where[0] == "hi" and where[2] == ["notes.txt", "sub"]
    assert not await anyio.Path(where[1]).exists()


async def test_an_exception_in_the_code_fails_the_node_with_its_line() -> None:
    with pytest.raises(NodeError) as caught:
        await run_code("x = 1\ny = {}\nreturn y['missing']", {}, timeout=5)
    assert caught.value.message == "the code raised at line 3: KeyError: 'missing'"
    assert caught.value.raw == "KeyError: 'missing'"


async def test_code_that_runs_too_long_is_killed_at_its_time_limit() -> None:
    started = time.perf_counter()
    with pytest.raises(NodeError, match=r"did not finish within its 0.3 s limit"):
        await run_code("while True:\n    pass", {}, timeout=0.3)
    assert time.perf_counter() - started < 2


async def test_output_beyond_the_limit_is_refused() -> None:
    with pytest.raises(NodeError, match="output is larger than 1000 bytes"):
        await run_code("return 'x' * 5000", {}, timeout=5, max_output=1000)


async def test_a_value_that_is_not_json_fails_with_a_clear_message() -> None:
    with pytest.raises(NodeError, match="returned a value that is not JSON"):
        await run_code("return {1, 2}", {}, timeout=5)


async def test_memory_is_capped() -> None:
    with pytest.raises(NodeError, match="MemoryError"):
        await run_code("return len(bytearray(2 * 1024 ** 3))", {}, timeout=5)


async def test_printing_does_not_corrupt_the_result() -> None:
    assert (
        await run_code(
            "print('noise')\nimport sys\nsys.stderr.write('more')\nreturn 7", {}, timeout=5
        )
        == 7
    )
