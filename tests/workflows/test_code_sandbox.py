"""Code nodes in their sandbox: a value back, limits enforced, refusals that name the fix.

The attacks (reading secrets, sockets, processes, escaping) are in
``tests/security/test_code_node_attacks.py``; this file is about the sandbox doing its job for
code that behaves, and about its limits and failure messages.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import anyio
import pytest

from promptrun.workflows._code_process import scratch_folder
from promptrun.workflows._code_sandbox import CodeLimits, CodeSandbox
from promptrun.workflows.nodes import NodeError
from tests._codebox import require_sandbox

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


@pytest.fixture
def sandbox() -> CodeSandbox:
    require_sandbox()
    return CodeSandbox()


async def test_a_code_node_returns_its_json_value_with_inputs_in_scope(
    sandbox: CodeSandbox,
) -> None:
    value = await sandbox.run(
        "import statistics, json, re, hashlib, sqlite3, datetime\n"
        "return {'mean': statistics.mean(xs), 'who': name.upper(),"
        " 'sha': hashlib.sha256(b'x').hexdigest()[:8]}",
        {"xs": [1, 2, 3], "name": "ada"},
        timeout=10,
    )
    assert value == {"mean": 2, "who": "ADA", "sha": "2d711642"}
    assert (await sandbox.status()).mode == "bwrap"


async def test_values_cross_the_boundary_as_json_both_ways(sandbox: CodeSandbox) -> None:
    given = {"s": "héllo ☃ \U0001f600 \"q\" \n", "n": 2**70, "f": 1.5, "xs": [1, None, True],
             "d": {"k": {"z": []}}}  # fmt: skip
    value = await sandbox.run(
        "return [s, n, f, xs, d, (1, 2), {1: 'a', None: 'b', 2.5: 'c', False: 'd'}]",
        given,
        timeout=10,
    )
    assert value == [*given.values(), [1, 2], {"1": "a", "null": "b", "2.5": "c", "false": "d"}]
    with pytest.raises(NodeError, match="not JSON: Out of range float values"):
        await sandbox.run("return float('nan')", {}, timeout=10)
    with pytest.raises(NodeError, match="not JSON: keys must be str"):
        await sandbox.run("return {(1, 2): 3}", {}, timeout=10)
    with pytest.raises(NodeError, match="the code node's inputs are not JSON"):
        await sandbox.run("return 1", {"x": object()}, timeout=10)


async def test_code_nodes_import_the_standard_library_only(sandbox: CodeSandbox) -> None:
    with pytest.raises(NodeError, match="ModuleNotFoundError: No module named 'msgspec'"):
        await sandbox.run("import msgspec\nreturn 1", {}, timeout=10)


async def test_a_code_node_may_use_files_in_its_own_folder_which_the_next_node_never_sees(
    sandbox: CodeSandbox,
) -> None:
    first = await sandbox.run(
        "import os, tempfile\nwith open('notes.txt', 'w') as f:\n    f.write('hi')\n"
        "os.mkdir('sub')\nwith tempfile.NamedTemporaryFile(delete=False) as t:\n    t.write(b'x')\n"
        "return [open('notes.txt').read(), os.getcwd(), sorted(os.listdir('.'))[:2]]",
        {},
        timeout=10,
    )
    assert first[:2] == ["hi", "/tmp"]
    assert first[2] == ["notes.txt", "sub"]
    assert await sandbox.run("import os\nreturn os.listdir('.')", {}, timeout=10) == []


async def test_an_exception_in_the_code_fails_the_node_with_its_line(
    sandbox: CodeSandbox,
) -> None:
    with pytest.raises(NodeError) as caught:
        await sandbox.run("x = 1\ny = {}\nreturn y['missing']", {}, timeout=10)
    assert caught.value.message == "the code raised at line 3: KeyError: 'missing'"
    assert caught.value.raw == "KeyError: 'missing'"


async def test_code_that_runs_too_long_is_killed_at_its_time_limit(sandbox: CodeSandbox) -> None:
    with pytest.raises(NodeError, match=r"did not finish within its 0.5 s limit"):
        await sandbox.run("while True:\n    pass", {}, timeout=0.5)


async def test_a_timeout_above_the_hosts_maximum_is_capped_and_the_message_says_so() -> None:
    require_sandbox()
    capped = CodeSandbox(limits=CodeLimits(max_timeout=0.5))
    with pytest.raises(NodeError) as caught:
        await capped.run("import time\ntime.sleep(30)", {}, timeout=30)
    assert caught.value.message == (
        "the code did not finish within its 0.5 s limit (it asks for 30 s; this host allows "
        "at most 0.5 s: --code-node-max-timeout)"
    )


async def test_output_beyond_the_limit_is_refused() -> None:
    require_sandbox()
    small = CodeSandbox(limits=CodeLimits(output_bytes=1000))
    with pytest.raises(NodeError, match="output is larger than 1000 bytes"):
        await small.run("return 'x' * 5000", {}, timeout=10)


async def test_a_value_that_is_not_json_fails_with_a_clear_message(sandbox: CodeSandbox) -> None:
    with pytest.raises(NodeError, match="returned a value that is not JSON"):
        await sandbox.run("return {1, 2}", {}, timeout=10)


async def test_memory_is_capped(sandbox: CodeSandbox) -> None:
    with pytest.raises(NodeError, match="MemoryError"):
        await sandbox.run("return len(bytearray(2 * 1024 ** 3))", {}, timeout=10)


async def test_one_file_is_capped_in_size() -> None:
    require_sandbox()
    box = CodeSandbox(limits=CodeLimits(file_bytes=1 * MiB, disk_bytes=8 * MiB))
    with pytest.raises(NodeError, match=r"File too large"):
        await box.run("open('big', 'wb').write(b'x' * (2 << 20))", {}, timeout=10)


async def test_all_files_together_are_capped_not_only_each_one() -> None:
    require_sandbox()
    box = CodeSandbox(limits=CodeLimits(file_bytes=3 * MiB, disk_bytes=8 * MiB))
    code = (
        "written = 0\n"
        "try:\n"
        "    for i in range(10):\n"
        "        with open(f'part{i}', 'wb') as f:\n"
        "            f.write(b'x' * (2 << 20))\n"
        "        written += 2\n"
        "except OSError as exc:\n"
        "    return [written, exc.strerror]\n"
    )
    written, error = await box.run(code, {}, timeout=10)
    assert error == "No space left on device"
    assert written <= 8


async def test_printing_does_not_corrupt_the_result(sandbox: CodeSandbox) -> None:
    code = "print('noise')\nimport sys\nsys.stderr.write('more')\nreturn 7"
    assert await sandbox.run(code, {}, timeout=10) == 7


async def test_a_node_waits_for_a_slot_within_its_own_timeout() -> None:
    require_sandbox()
    box = CodeSandbox(slots=1)
    async with box.slots.slot("a"):  # another workspace's node holds the only slot
        with pytest.raises(NodeError) as caught:
            await box.run("return 1", {}, timeout=0.3, owner="b")
    assert caught.value.message.startswith(
        "the code waited its whole 0.3 s limit for a free code-node slot and did not run: "
        "1 of 1 are busy, 0 of them this workspace's"
    )
    assert box.slots.in_use == 0
    assert await box.run("return 1", {}, timeout=10, owner="b") == 1


# -- where the sandbox cannot be made ----------------------------------------------------


async def test_without_bwrap_code_nodes_are_refused_with_the_fix(tmp_path: Path) -> None:
    box = CodeSandbox(bwrap=str(tmp_path / "no-such-bwrap"))
    status = await box.status()
    assert status.mode == "refused"
    with pytest.raises(NodeError) as caught:
        await box.run("return 1", {}, timeout=10)
    message = caught.value.message
    assert message.startswith("code nodes cannot run here: this machine cannot create their")
    assert "is not an executable file" in message
    assert "install bubblewrap" in message
    assert "unprivileged user namespaces" in message
    assert "--unsafe-code-nodes" in message


async def test_a_bwrap_that_cannot_make_namespaces_is_reported_in_the_refusal(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "bwrap"
    broken.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    box = CodeSandbox(bwrap=str(broken))
    status = await box.status()
    assert status.mode == "refused"
    assert "No permissions to create new namespace" in status.detail
    with pytest.raises(NodeError, match="No permissions to create new namespace"):
        await box.run("return 1", {}, timeout=10)


async def test_unsafe_mode_runs_code_unsandboxed_in_a_folder_it_then_removes() -> None:
    box = CodeSandbox(unsafe=True)
    assert (await box.status()).mode == "unsafe"
    where = await box.run(
        "import os\nopen('f', 'w').write('x')\nreturn os.getcwd()", {}, timeout=10
    )
    assert where.startswith(os.path.join(scratch_folder(), "node-"))
    assert not await anyio.Path(where).exists()


async def test_a_dead_servers_scratch_folders_are_swept_by_the_next_one(tmp_path: Path) -> None:
    root = Path(scratch_folder()).parent
    dead = await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])
    leftover = root / dead.stdout.decode().strip() / "node-left-behind"
    leftover.mkdir(parents=True)
    (leftover / "secret").write_text("x")
    assert (await CodeSandbox(unsafe=True).status()).mode == "unsafe"  # it sweeps at start
    assert not leftover.parent.exists()
