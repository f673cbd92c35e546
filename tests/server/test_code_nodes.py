"""How a server runs code nodes: sandboxed, refused with the fix, or loudly unsafe; fair shares."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptrun.cli import main
from promptrun.server.app import ServerConfig, create_app
from promptrun.server.routes.workflows import WORKFLOWS
from promptrun.testing import ServerProcess
from promptrun.workflows._code_sandbox import CodeNodeSettings
from tests._codebox import require_sandbox
from tests.security._http import Http

from ._api import KEY, OTHER_KEY, Api

CODE = {"nodes": [{"name": "c", "type": "code", "configuration": {"code": "return 6 * 7"},
                   "is_output_node": True}]}  # fmt: skip
VALUE = {"nodes": [{"name": "v", "type": "value", "configuration": {"value": "still fine"},
                    "is_output_node": True}]}  # fmt: skip


def _run(http: Http, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    http.ok("POST", "/rest/workflows", {"workflow_name": name, "definition": definition})
    started = http.ok("POST", f"/workflows/{name}/run", {})
    path = f"/promptrun/v1/workflow-executions/{started['workflow_version_execution_id']}"
    deadline = time.monotonic() + 30
    while (got := http.ok("GET", path))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still running after 30 s"
        time.sleep(0.05)
    return got  # type: ignore[no-any-return]


def test_a_server_that_cannot_make_the_sandbox_says_so_at_start_and_refuses_code_nodes(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-bwrap-here"
    with ServerProcess(tmp_path / "p.db", args=["--bwrap", str(missing)]) as proc:
        printed = proc.output()
        assert "promptrun serve: code nodes are REFUSED: code nodes cannot run here" in printed
        assert f"'{missing}' is not an executable file" in printed
        assert "install bubblewrap" in printed and "--unsafe-code-nodes" in printed
        http = Http(proc.base_url, proc.api_key)
        done = _run(http, "code", CODE)
        (node,) = done["nodes"]
        assert (done["status"], node["status"]) == ("FAILED", "FAILED")
        assert node["error_message"].startswith(
            "node 'c' failed: code nodes cannot run here: this machine cannot create their "
            f"sandbox ('{missing}' is not an executable file). To fix it, install bubblewrap"
        )
        assert _run(http, "value", VALUE)["nodes"][0]["value"] == "still fine"


def test_a_server_that_can_make_the_sandbox_says_so_at_start(tmp_path: Path) -> None:
    require_sandbox()
    with ServerProcess(tmp_path / "p.db") as proc:
        assert "promptrun serve: code nodes: sandboxed by bubblewrap (" in proc.output()
        assert _run(Http(proc.base_url, proc.api_key), "code", CODE)["nodes"][0]["value"] == 42
        page = urllib.request.urlopen(proc.base_url + "/dashboard/signin").read().decode()
        assert "unsafe-code-nodes" not in page


def test_unsafe_code_nodes_warn_at_start_and_on_every_dashboard_page(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "p.db", args=["--unsafe-code-nodes"]) as proc:
        printed = proc.output()
        assert (
            "WARNING: --unsafe-code-nodes: workflow code nodes run WITHOUT the sandbox." in printed
        )
        page = urllib.request.urlopen(proc.base_url + "/dashboard/signin").read().decode()
        assert 'id="unsafe-code-nodes"' in page
        assert "runs workflow code nodes without a sandbox (--unsafe-code-nodes)" in page
        assert _run(Http(proc.base_url, proc.api_key), "code", CODE)["nodes"][0]["value"] == 42


def test_the_command_line_refuses_a_workspace_share_of_every_slot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["serve", "--code-node-slots", "2", "--code-node-workspace-slots", "2"])
    assert status == 2
    assert "--code-node-workspace-slots must be less than the 2 code-node slots" in (
        capsys.readouterr().err
    )


# -- fair share, in process -----------------------------------------------------------------


@pytest.fixture
async def fair(tmp_path: Path) -> AsyncIterator[tuple[Api, web.Application]]:
    require_sandbox()
    config = ServerConfig(
        db_path=tmp_path / "p.db", api_keys=(KEY, f"other:{OTHER_KEY}"), generate_key=False,
        sandbox=False, code_nodes=CodeNodeSettings(slots=2, workspace_slots=1),
    )  # fmt: skip
    app = create_app(config)
    async with (
        TestServer(app, host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Api(client), app


async def _until(check: Callable[[], bool]) -> None:
    with anyio.fail_after(20):
        while True:
            if check():
                return
            await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_one_workspace_cannot_hold_every_code_node_slot(
    fair: tuple[Api, web.Application],
) -> None:
    api, app = fair
    slots = app[WORKFLOWS].code.slots
    nap = {"code": "import time\ntime.sleep(60)", "timeout": 60}
    busy = {"nodes": [{"name": n, "type": "code", "configuration": nap} for n in ("a", "b")]}
    await api.ok("POST", "/rest/workflows", {"workflow_name": "busy", "definition": busy})
    started = await api.ok("POST", "/workflows/busy/run", {})
    await _until(lambda: slots.in_use > 0)
    await api.ok("POST", "/rest/workflows", {"workflow_name": "quick", "definition": CODE},
                 key=OTHER_KEY)  # fmt: skip
    quick = await api.ok("POST", "/workflows/quick/run", {}, key=OTHER_KEY)
    path = f"/promptrun/v1/workflow-executions/{quick['workflow_version_execution_id']}"
    with anyio.fail_after(20):
        while True:
            done = await api.ok("GET", path, key=OTHER_KEY)
            if done["status"] != "RUNNING":
                break
            await anyio.sleep(0.02)
    assert done["nodes"][0]["value"] == 42  # the other workspace got the free slot
    assert (slots.total, slots.in_use) == (2, 1)  # the busy workspace holds one, not both
    busy_id = started["workflow_version_execution_id"]
    await api.ok("POST", f"/promptrun/v1/workflow-executions/{busy_id}/cancel")
    await _until(lambda: slots.in_use == 0)
