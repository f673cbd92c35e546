"""Red team: a code node tries to outlive the server that started it, which is then SIGKILLed.

The node detaches every way it knows (a double fork into a new session, a child in a new
session, a long sleep of its own) and leaves a file behind. The server is killed with SIGKILL:
no shutdown code runs. Nothing of the node may remain: no process from the server's tree, none
carrying the node's marker, nothing in the server's temporary folder.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from promptrun.testing import ServerProcess
from tests._codebox import require_sandbox

from ._attacks import Attack
from ._http import Http

MARKER = "outlive" + secrets.token_hex(6)
DETACH = Attack(
    "outlive",
    "outlive the server",
    f"""
import os, sys, time
def double_fork():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(120)  # {MARKER}
            os._exit(0)
        os._exit(0)
    return "detached"
found["double fork"] = attempt(double_fork)
found["new session child"] = attempt(lambda: __import__("subprocess").Popen(
    [sys.executable, "-c", "import time; time.sleep(120)  # {MARKER}"],
    start_new_session=True).pid)
open("left-behind-{MARKER}", "w").write("x")
time.sleep(120)
return found
""",
    timeout=60,
)
SLEEP = {"code": "import time\ntime.sleep(120)", "timeout": 60}


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(name)] = (ppid, cmdline)
    return found


def _descendants(root: int) -> dict[int, str]:
    table = _processes()
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, cmdline) in table.items():
            if ppid == parent and pid not in out:
                out[pid] = cmdline
                todo.append(pid)
    return out


def _wait_for(what: str, check: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _start_node(proc: ServerProcess, name: str, definition: dict[str, Any]) -> None:
    http = Http(proc.base_url, proc.api_key)
    http.ok("POST", "/rest/workflows", {"workflow_name": name, "definition": definition})
    http.ok("POST", f"/workflows/{name}/run", {"input_variables": {}})


def _gone(pids: dict[int, str]) -> bool:
    alive = _processes()
    return not any(pid in alive and alive[pid][1] == cmdline for pid, cmdline in pids.items())


def test_a_code_node_does_not_outlive_a_killed_server(tmp_path: Path) -> None:
    require_sandbox()
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(server_tmp)}
    with ServerProcess(tmp_path / "p.db", env=env) as proc:
        assert proc.process is not None
        definition = {"nodes": [{"name": "n", "type": "code", "is_output_node": True,
                                 "configuration": {"code": DETACH.body, "timeout": 60}}]}  # fmt: skip
        _start_node(proc, "detach", definition)
        # The node runs: bwrap (its command line names the sandbox's host name) and below it
        # the sandbox's init and the node's interpreter.
        tree = _wait_for(
            "the node's processes",
            lambda: (
                (t := _descendants(proc.process.pid))
                and any("promptrun-code" in c for c in t.values())
                and len(t) >= 3
                and t
            ),
        )
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait()
        _wait_for("every process of the node to end", lambda: _gone(tree))
    assert not [c for _, c in _processes().values() if MARKER in c]
    assert list(server_tmp.iterdir()) == []


def test_an_unsandboxed_node_dies_with_a_killed_server_and_its_folder_is_swept_at_restart(
    tmp_path: Path,
) -> None:
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(server_tmp)}
    with ServerProcess(tmp_path / "p.db", env=env, args=["--unsafe-code-nodes"]) as proc:
        assert proc.process is not None
        definition = {"nodes": [{"name": "n", "type": "code", "configuration": SLEEP}]}
        _start_node(proc, "nap", definition)
        tree = _wait_for("the node's process", lambda: _descendants(proc.process.pid))
        scratch = server_tmp / f"promptrun-code-{os.getuid()}" / str(proc.process.pid)
        assert [p.name[:5] for p in scratch.iterdir()] == ["node-"]
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait()
        _wait_for("the node's process to end", lambda: _gone(tree))
        assert scratch.exists()  # nobody was left to remove it...
        proc.start()
        assert not scratch.exists()  # ...until the next server started
