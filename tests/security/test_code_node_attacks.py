"""Red team: code nodes published through the server's API with an ordinary key attack it.

Each attack in :mod:`tests.security._attacks` runs as a workflow on a real server (published
with ``POST /rest/workflows`` and started with ``POST /workflows/{name}/run`` by a key of one
workspace), twice: with the sandbox as shipped, and with its in-process audit hook left out, so
that the kernel's boundary is shown to hold on its own. Then the same attacks run through a
client's local execution, with the client's provider key in its environment.

Planted around the server: secrets in its environment (``OPENAI_API_KEY`` among them), a secret
file beside its database, one in its temporary folder, another workspace's data in the
database. Listening on the host: a UDP port and a Unix socket that must never hear from a node.
Every attack must fail, and nothing it returns (value, error, raw error) may contain any of it.
"""

from __future__ import annotations

import copy
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

import promptrun.workflows._code_sandbox as code_sandbox_module
from promptrun import AsyncPromptLayer
from promptrun.testing import running_server
from promptrun.workflows._code_sandbox import CodeNodeSettings
from tests._codebox import require_sandbox

from ._attacks import ATTACKS, Attack
from ._http import Http
from ._samples import publish_body

KEY = "pl_redteam_" + secrets.token_hex(8)
OTHER_KEY = "pl_other_" + secrets.token_hex(8)
SECRET_ENV = "sk-redteam-env-" + secrets.token_hex(12)
SECRET_FILE = "redteam-file-" + secrets.token_hex(12)
SECRET_TEMP = "redteam-temp-" + secrets.token_hex(12)
SECRET_DATA = "redteam-other-workspace-" + secrets.token_hex(12)
MARKER = "redteam" + secrets.token_hex(6)
# What no node output may ever contain: the secrets, and proof of a file read.
NEVER_SEEN = (
    SECRET_ENV, SECRET_FILE, SECRET_TEMP, SECRET_DATA, "root:x:0:0", "SQLite format 3",
    "def local_sandbox(",
)  # fmt: skip
DISK_CAP_MIB = code_sandbox_module.CodeLimits().disk_bytes >> 20


@dataclass
class Target:
    host_dir: Path
    db_path: Path
    secret_file: Path
    decoy: Path
    temp_secret: Path
    udp: socket.socket
    unix: socket.socket
    unix_path: Path

    def inputs(self, server_url: str) -> dict[str, Any]:
        return {
            "db_path": str(self.db_path),
            "secret_file": str(self.secret_file),
            "server_temp_secret": str(self.temp_secret),
            "repo_file": code_sandbox_module.__file__,
            "host_dir": str(self.host_dir),
            "decoy": str(self.decoy),
            "server_url": server_url,
            "server_port": int(server_url.rsplit(":", 1)[1]),
            "udp_port": self.udp.getsockname()[1],
            "unix_socket": str(self.unix_path),
            "marker": MARKER,
        }

    def nothing_reached_the_host(self) -> None:
        """No file a node tried to write exists; the host's listeners heard nothing."""
        assert sorted(p.name for p in self.host_dir.iterdir() if MARKER in p.name) == []
        assert self.decoy.read_text() == "decoy" and self.decoy.stat().st_mode & 0o777 == 0o600
        for folder in (tempfile.gettempdir(), "/dev/shm", "/", os.path.dirname(os.__file__)):
            stray = Path(folder, MARKER)
            if stray.exists():
                stray.unlink()
                pytest.fail(f"a code node wrote {stray} on the host")
        with pytest.raises(BlockingIOError):
            self.udp.recvfrom(100)
        with pytest.raises(BlockingIOError):
            self.unix.accept()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    require_sandbox()
    host_dir = tmp_path_factory.mktemp("server-files")
    secret_file = host_dir / "provider-keys.txt"
    secret_file.write_text(SECRET_FILE)
    decoy = host_dir / "config.toml"
    decoy.write_text("decoy")
    decoy.chmod(0o600)
    temp_secret = Path(tempfile.gettempdir()) / f"promptrun-redteam-{MARKER}.txt"
    temp_secret.write_text(SECRET_TEMP)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    unix_path = host_dir / "db.sock"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(unix_path))
    unix.listen()
    unix.setblocking(False)
    saved = {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "PROMPTRUN_REDTEAM_SECRET")}
    os.environ["OPENAI_API_KEY"] = SECRET_ENV
    os.environ["PROMPTRUN_REDTEAM_SECRET"] = SECRET_ENV
    try:
        yield Target(host_dir, host_dir / "promptrun.db", secret_file, decoy, temp_secret, udp,
                     unix, unix_path)  # fmt: skip
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        udp.close()
        unix.close()
        temp_secret.unlink()


@dataclass
class Victim:
    http: Http
    base_url: str
    names: set[str]


@pytest.fixture(scope="module", params=[True, False], ids=["audit-hook", "kernel-only"])
def victim(request: pytest.FixtureRequest, target: Target) -> Iterator[Victim]:
    with running_server(
        sandbox=False,
        db_path=target.db_path,
        api_keys=(f"team:{KEY}", f"other:{OTHER_KEY}"),
        code_nodes=CodeNodeSettings(audit_hook=request.param),
    ) as srv:
        other = Http(srv.base_url, OTHER_KEY)
        body = copy.deepcopy(publish_body("other-team-secret"))
        body["prompt_version"]["prompt_template"]["messages"][0]["content"][0]["text"] = SECRET_DATA
        other.ok("POST", "/rest/prompt-templates", body)
        victim = Victim(Http(srv.base_url, KEY), srv.base_url, set())
        _refuse_to_attack_an_unsandboxed(_run_on_server(victim, CANARY, {}))
        yield victim
    target.db_path.unlink(missing_ok=True)


# Before any attack: is the node really in a sandbox of its own (PID 2 of a new namespace, no
# host root)? An attack run outside one would hit the machine running the tests.
CANARY = Attack("canary", "", "import os\nreturn [os.getpid(), os.path.exists('/etc/passwd')]")


def _refuse_to_attack_an_unsandboxed(node: dict[str, Any]) -> None:
    if node["status"] != "SUCCESS" or node["value"] != [2, False]:
        pytest.fail(f"code nodes are not sandboxed here, so no attack is run: {node}")


def _definition(attack: Attack) -> dict[str, Any]:
    return {
        "input_variables": ["target"],
        "nodes": [
            {"name": "attack", "type": "code", "is_output_node": True,
             "configuration": {"code": attack.body, "timeout": attack.timeout},
             "inputs": {"target": "target"}},
        ],
    }  # fmt: skip


def _run_on_server(victim: Victim, attack: Attack, inputs: dict[str, Any]) -> dict[str, Any]:
    name = f"innocent-{attack.name}"
    if name not in victim.names:
        body = {"workflow_name": name, "definition": _definition(attack)}
        victim.http.ok("POST", "/rest/workflows", body)
        victim.names.add(name)
    started = victim.http.ok(
        "POST", f"/workflows/{name}/run", {"input_variables": {"target": inputs}}
    )
    path = f"/promptrun/v1/workflow-executions/{started['workflow_version_execution_id']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        execution = victim.http.ok("GET", path)
        if execution["status"] != "RUNNING":
            (node,) = execution["nodes"]
            return node  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"the {attack.name} attack was still running after 60 s")


def _judge(attack: Attack, node: dict[str, Any], target: Target) -> None:
    """The attack got nothing: no secret anywhere, every way in refused, the host untouched."""
    seen = msgspec.json.encode(node).decode()
    for secret in NEVER_SEEN:
        assert secret not in seen, f"{attack.name}: {secret!r} leaked: {seen[:3000]}"
    target.nothing_reached_the_host()
    if attack.name == "infinite-loop":
        assert node["status"] == "FAILED"
        assert "did not finish within its 1 s limit" in node["error_message"]
        return
    if node["status"] == "FAILED":  # the attack died before it could report: nothing got out
        assert node["error_message"].startswith("node 'attack' failed: the code "), node
        return
    found: dict[str, str] = node["value"]
    got_in = {k: v for k, v in found.items() if k not in attack.harmless and v.startswith("OK")}
    assert got_in == {}, f"{attack.name}: these ways in worked: {got_in}"
    if attack.name == "fork-bomb":
        assert found["fork loop"].endswith("after 0")
    if attack.name == "disk-fill":
        written = int(found["fill"].split(" after ")[1].split()[0])
        assert found["fill"].startswith("ERR No space left on device")
        assert written <= DISK_CAP_MIB
    if attack.name == "environment":
        # bwrap sets PWD; Python may set its locale: nothing else
        environ = eval(found["os.environ"][3:], {})  # the node's own repr of a dict of str
        assert set(environ) <= {"PWD", "LC_CTYPE"}
        assert found["getenv"] == "OK None"


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_a_code_node_attacking_the_server_gets_nothing(
    attack: Attack, victim: Victim, target: Target
) -> None:
    node = _run_on_server(victim, attack, target.inputs(victim.base_url))
    _judge(attack, node, target)
    assert victim.http.call("GET", "/health").status == 200  # and the server is still up


@pytest.mark.anyio
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_a_code_node_attacking_the_client_in_local_execution_gets_nothing(
    attack: Attack, target: Target, tmp_path: Path
) -> None:
    async with AsyncPromptLayer(
        api_key=KEY, base_url="http://127.0.0.1:9", spool_dir=tmp_path / "spool"
    ) as client:
        canary = await client.run_workflow(
            None, {"target": {}}, execution="local", definition=_definition(CANARY),
            return_all_outputs=True,
        )  # fmt: skip
        _refuse_to_attack_an_unsandboxed(canary["attack"])
        results = await client.run_workflow(
            None,
            {"target": target.inputs("http://127.0.0.1:9")},
            execution="local",
            definition=_definition(attack),
            return_all_outputs=True,
        )
    _judge(attack, results["attack"], target)
