"""Workflow endpoints: publish and read versions, run in the background, read executions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.routes.workflows import WORKFLOWS
from promptrun.workflows._destinations import ToolPolicy

from ._api import KEY, OTHER_KEY, Api

pytestmark = pytest.mark.anyio


def answer(value: Any, **node: Any) -> dict[str, Any]:
    return {"nodes": [{"name": "out", "type": "value", "configuration": {"value": value},
                       "is_output_node": True, **node}]}  # fmt: skip


def slow(seconds: float = 5) -> dict[str, Any]:
    code = f"import time\ntime.sleep({seconds})\nreturn 'woke'"
    return {"nodes": [{"name": "nap", "type": "code",
                       "configuration": {"code": code, "timeout": 30}, "is_output_node": True}]}  # fmt: skip


async def publish(
    api: Api, name: str, definition: dict[str, Any], labels: list[str] | None = None, key: str = KEY
) -> Any:
    body = {"workflow_name": name, "definition": definition, "release_labels": labels or []}
    status, got = await api.call("POST", "/rest/workflows", body, key=key)
    assert status == 201, got
    return got


async def start(api: Api, ref: Any, key: str = KEY, **body: Any) -> int:
    status, got = await api.call("POST", f"/workflows/{ref}/run", body, key=key)
    assert status == 201, got
    return int(got["workflow_version_execution_id"])


async def finished(api: Api, execution_id: int, key: str = KEY) -> dict[str, Any]:
    with anyio.fail_after(10):
        while True:
            got = await api.ok("GET", f"/promptrun/v1/workflow-executions/{execution_id}", key=key)
            if got["status"] != "RUNNING":
                return got  # type: ignore[no-any-return]
            await anyio.sleep(0.02)


async def test_publishing_makes_versions_and_moves_labels_like_templates(api: Api) -> None:
    first = await publish(api, "flow", answer(1), ["prod", "staging"])
    assert first["version_number"] == 1
    assert first["workflow"]["release_labels"] == ["prod", "staging"]
    second = await publish(api, "flow", answer(2), ["staging"])
    assert second["version_number"] == 2
    assert second["workflow"]["id"] == first["workflow"]["id"]
    latest = await api.ok("GET", "/workflows/flow")
    assert latest["workflow"]["version_number"] == 2
    assert latest["workflow"]["definition"] == answer(2)
    by_label = await api.ok("GET", "/workflows/flow?label=prod")
    assert (by_label["workflow"]["version_number"], by_label["workflow"]["release_labels"]) == (
        1,
        ["prod"],
    )
    by_version = await api.ok("GET", "/workflows/flow?version=2")
    assert by_version["workflow"]["release_labels"] == ["staging"]
    by_id = await api.ok("GET", f"/workflows/{first['workflow']['id']}")
    assert by_id["workflow"]["name"] == "flow"
    listing = await api.ok("GET", "/workflows")
    assert [w["name"] for w in listing["items"]] == ["flow"] and listing["total"] == 1


async def test_missing_versions_and_labels_are_404s_that_say_what_exists(api: Api) -> None:
    await publish(api, "flow", answer(1), ["prod"])
    status, got = await api.call("GET", "/workflows/flow?version=7")
    assert (status, got["message"]) == (404, "workflow 'flow' has no version 7; versions are 1..1")
    status, got = await api.call("GET", "/workflows/flow?label=beta")
    assert status == 404 and "its labels: 'prod'" in got["message"]
    status, got = await api.call("GET", "/workflows/ghost")
    assert status == 404 and "publish it first (POST /rest/workflows)" in got["message"]


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"nodes": [{"name": "a", "type": "value", "configuration": {"value": 1}, "dependencies": ["b"]},
                    {"name": "b", "type": "value", "configuration": {"value": 1}, "dependencies": ["a"]}]},
         "the workflow has a cycle: a -> b -> a"),
        ({"nodes": [{"name": "a", "type": "value", "configuration": {"value": 1}, "inputs": {"x": "zzz"}}]},
         "'zzz' is neither a node nor an input variable"),
        ({"nodes": [{"name": "a", "type": "magic"}]}, "node 'a' has unknown type 'magic'"),
        ({"nodes": [{"name": "a", "type": "code", "configuration": {"code": "def"}}]},
         "node 'a' (code): the code does not compile"),
    ],
)  # fmt: skip
async def test_a_definition_that_cannot_run_is_a_400_naming_the_problem(
    api: Api, definition: dict[str, Any], message: str
) -> None:
    status, got = await api.call(
        "POST", "/rest/workflows", {"workflow_name": "bad", "definition": definition}
    )
    assert status == 400
    assert message in got["message"]
    assert (await api.call("GET", "/workflows/bad"))[0] == 404


async def test_publish_bodies_and_names_are_checked(api: Api) -> None:
    status, got = await api.call(
        "POST", "/rest/workflows", {"workflow_name": "x", "definition": answer(1), "extra": 1}
    )
    assert status == 400 and "unknown field `extra`" in got["message"]
    for name in ("12", "a/b", " padded"):
        status, got = await api.call(
            "POST", "/rest/workflows", {"workflow_name": name, "definition": answer(1)}
        )
        assert status == 400, name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        (".", "cannot be '.'"),
        ("..", "cannot be '..'"),
        ("a\x7fb", "control characters ('\\x7f' at position 1)"),
        ("a\nb", "control characters ('\\n' at position 1)"),
        ("a\x85b", "control characters ('\\x85' at position 1)"),
    ],
)
async def test_a_workflow_name_no_client_could_fetch_is_a_400_naming_the_rule(
    api: Api, name: str, rule: str
) -> None:
    status, got = await api.call(
        "POST", "/rest/workflows", {"workflow_name": name, "definition": answer(1)}
    )
    assert status == 400
    assert got["message"].startswith("workflow_name ")
    assert rule in got["message"]
    assert (await api.ok("GET", "/workflows"))["total"] == 0


async def test_workflows_and_executions_belong_to_one_workspace(api: Api) -> None:
    mine = await publish(api, "private", answer("secret"))
    workflow_id = mine["workflow"]["id"]
    execution_id = await start(api, workflow_id)
    for method, path in [
        ("GET", "/workflows/private"),
        ("GET", f"/workflows/{workflow_id}"),
        ("POST", f"/workflows/{workflow_id}/run"),
        ("POST", f"/ws-token-request-library?capability=workflows:{workflow_id}:run:abc"),
        ("GET", f"/promptrun/v1/workflow-executions/{execution_id}"),
        ("POST", f"/promptrun/v1/workflow-executions/{execution_id}/cancel"),
        (
            "GET",
            f"/workflow-version-execution-results?workflow_version_execution_id={execution_id}",
        ),
    ]:
        status, _ = await api.call(method, path, {} if method == "POST" else None, key=OTHER_KEY)
        assert status == 404, (method, path)
    assert (await api.ok("GET", "/workflows", key=OTHER_KEY))["total"] == 0
    assert (await api.ok("GET", "/promptrun/v1/workflow-executions", key=OTHER_KEY))["total"] == 0
    assert (await api.call("GET", "/workflows"))[0] == 200
    assert (await api.call("GET", "/workflows", key=None))[0] == 401


async def test_a_run_starts_in_the_background_and_its_results_are_stored_node_by_node(
    api: Api,
) -> None:
    definition = {
        "input_variables": ["n", {"name": "unit", "default": "cm"}],
        "nodes": [
            {"name": "double", "type": "code", "configuration": {"code": "return n * 2"}, "inputs": {"n": "n"}},
            {"name": "label", "type": "code", "configuration": {"code": "return f'{v} {u}'"},
             "inputs": {"v": "double", "u": "unit"}, "is_output_node": True},
        ],
    }  # fmt: skip
    await publish(api, "calc", definition)
    status, got = await api.call(
        "POST", "/workflows/calc/run", {"input_variables": {"n": 21, "x": 1}}
    )
    assert status == 201
    assert got["warning"] == "input variables the workflow does not declare were ignored: x"
    execution = await finished(api, got["workflow_version_execution_id"])
    assert execution["status"] == "SUCCESS"
    assert execution["input_variables"] == {"n": 21, "unit": "cm"}
    assert [(n["name"], n["status"], n["value"]) for n in execution["nodes"]] == [
        ("double", "SUCCESS", 42),
        ("label", "SUCCESS", "42 cm"),
    ]
    assert all(n["duration_ms"] is not None for n in execution["nodes"])
    results = f"/workflow-version-execution-results?workflow_version_execution_id={execution['id']}"
    assert await api.ok("GET", results) == "42 cm"
    everything = await api.ok("GET", results + "&return_all_outputs=true")
    assert everything["double"] == {"status": "SUCCESS", "value": 42, "error_message": None,
                                    "raw_error_message": None, "is_output_node": False}  # fmt: skip


async def test_a_run_with_a_missing_input_or_a_bad_channel_is_refused(api: Api) -> None:
    await publish(api, "needs", {"input_variables": ["must"], **answer(1)})
    status, got = await api.call("POST", "/workflows/needs/run", {})
    assert (status, got["message"]) == (
        400,
        "workflow 'needs' version 1: input variable 'must' is required and was not given",
    )
    status, got = await api.call(
        "POST",
        "/workflows/needs/run",
        {"input_variables": {"must": 1}, "channel_name_suffix": "a b"},
    )
    assert status == 400 and "channel_name_suffix" in got["message"]
    assert (await api.call("POST", "/workflows/999/run", {}))[0] == 404


async def test_results_of_a_running_execution_are_a_409_and_cancel_stops_it(api: Api) -> None:
    await publish(api, "sleepy", slow())
    execution_id = await start(api, "sleepy")
    path = f"/workflow-version-execution-results?workflow_version_execution_id={execution_id}"
    status, got = await api.call("GET", path)
    assert status == 409 and "still running" in got["message"]
    cancelled = await api.ok("POST", f"/promptrun/v1/workflow-executions/{execution_id}/cancel")
    assert cancelled == {"success": True, "cancelled": True}
    execution = await finished(api, execution_id)
    assert (execution["status"], execution["error_message"]) == ("FAILED", "cancelled on request")
    assert execution["nodes"][0]["error_message"] == "cancelled: the workflow was cancelled"
    again = await api.ok("POST", f"/promptrun/v1/workflow-executions/{execution_id}/cancel")
    assert again["cancelled"] is False
    failing = await api.ok("GET", path)
    assert failing["nap"]["status"] == "FAILED"  # no output succeeded: the whole record


async def test_executions_are_listed_newest_first_and_filtered(api: Api) -> None:
    await publish(api, "one", answer(1))
    await publish(api, "two", answer(2))
    ids = [await start(api, "one"), await start(api, "two"), await start(api, "one")]
    for execution_id in ids:
        await finished(api, execution_id)
    listing = await api.ok("GET", "/promptrun/v1/workflow-executions")
    assert [e["id"] for e in listing["items"]] == ids[::-1]
    assert "nodes" not in listing["items"][0]
    only_one = await api.ok("GET", "/promptrun/v1/workflow-executions?workflow=one&status=SUCCESS")
    assert [e["id"] for e in only_one["items"]] == [ids[2], ids[0]]
    assert (await api.call("GET", "/promptrun/v1/workflow-executions?status=DONE"))[0] == 400


@pytest.fixture
async def tool_server() -> AsyncIterator[str]:
    """An HTTP tool: sleeps ``seconds`` and echoes the JSON it was sent, or fails."""

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("fail"):
            return web.json_response({"error": "nope"}, status=502)
        await anyio.sleep(body.get("seconds", 0))
        return web.json_response({"echo": body, "key_header": request.headers.get("X-API-KEY")})

    app = web.Application()
    app.router.add_post("/tool", handler)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield str(server.make_url("/tool"))


def allow_tool(api: Api, url: str) -> None:
    """As if the server had been started with ``--tool-url URL``."""
    api.client.server.app[WORKFLOWS].tool_policy = ToolPolicy((url,))


async def test_http_tool_nodes_run_in_parallel_on_the_server_without_our_key(
    api: Api, tool_server: str
) -> None:
    allow_tool(api, tool_server)

    def call(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "type": "tool", "configuration": {"url": tool_server},
                "inputs": {"seconds": "s"}, **extra}  # fmt: skip

    definition = {
        "input_variables": [{"name": "s", "default": 0.3}],
        "nodes": [call("left"), call("right"),
                  {"name": "both", "type": "code", "configuration": {"code": "return [l, r]"},
                   "inputs": {"l": "left.echo", "r": "right.key_header"}, "is_output_node": True}],
    }  # fmt: skip
    await publish(api, "tools", definition)
    execution = await finished(api, await start(api, "tools"))
    assert execution["status"] == "SUCCESS", execution
    left, right, both = execution["nodes"]
    assert both["value"] == [{"seconds": 0.3}, None]  # the tool never sees the API key
    assert left["started_at"] < right["finished_at"] and right["started_at"] < left["finished_at"]


async def test_a_failing_tool_and_a_tool_without_url_fail_their_nodes_with_reasons(
    api: Api, tool_server: str
) -> None:
    allow_tool(api, tool_server)
    definition = {
        "input_variables": [{"name": "fail", "default": True}],
        "nodes": [
            {"name": "http", "type": "tool", "configuration": {"url": tool_server}, "inputs": {"fail": "fail"}},
            {"name": "local_only", "type": "tool", "configuration": {"name": "mine"}},
        ],
    }  # fmt: skip
    await publish(api, "broken-tools", definition)
    execution = await finished(api, await start(api, "broken-tools"))
    http, local_only = execution["nodes"]
    assert (
        http["error_message"]
        == f"node 'http' failed: tool {tool_server} answered HTTP 502: " + '{"error": "nope"}'
    )
    assert "the server calls HTTP tools only" in local_only["error_message"]
    assert execution["status"] == "FAILED"


async def test_tool_nodes_may_not_make_the_server_call_internal_addresses_by_default(
    api: Api, tool_server: str
) -> None:
    definition = {
        "nodes": [
            {"name": "internal", "type": "tool", "configuration": {"url": "http://10.0.0.1/x"}},
            {"name": "metadata", "type": "tool",
             "configuration": {"url": "http://169.254.169.254/latest/meta-data"}},
            {"name": "loopback", "type": "tool", "configuration": {"url": tool_server}},
        ],
    }  # fmt: skip
    await publish(api, "ssrf-tools", definition)
    execution = await finished(api, await start(api, "ssrf-tools"))
    assert [n["status"] for n in execution["nodes"]] == ["FAILED", "FAILED", "FAILED"]
    for node in execution["nodes"]:
        assert "tool URLs must match a --tool-url entry" in node["error_message"]


async def test_a_prompt_node_for_a_missing_template_fails_with_the_registrys_message(
    api: Api,
) -> None:
    await publish(api, "p", {"nodes": [{"name": "ask", "type": "prompt_template",
                                        "configuration": {"prompt_name": "ghost"}, "is_output_node": True}]})  # fmt: skip
    execution = await finished(api, await start(api, "p"))
    assert (
        "prompt template 'ghost' not found in this workspace"
        in execution["nodes"][0]["error_message"]
    )


async def test_a_prompt_node_whose_template_goes_past_the_render_budget_fails_naming_it(
    api: Api,
) -> None:
    wide = {"type": "chat", "messages": [{"role": "user", "template_format": "jinja2",
            "content": [{"type": "text", "text": "{{ x|center(999999999) }}"}]}]}  # fmt: skip
    await api.publish("wide", wide)
    await publish(api, "p", {"input_variables": ["x"], "nodes": [
        {"name": "ask", "type": "prompt_template", "configuration": {"prompt_name": "wide"},
         "inputs": {"x": "x"}, "is_output_node": True}]})  # fmt: skip
    execution = await finished(api, await start(api, "p", input_variables={"x": "a"}))
    message = execution["nodes"][0]["error_message"]
    assert "prompt template 'wide' (version 1): rendering would build more than" in message
    assert "size budget of 16,000,000 characters" in message


async def test_executions_running_when_the_server_stops_are_stored_as_failed(
    tmp_path: Path, config: ServerConfig
) -> None:
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        api = Api(client)
        await publish(api, "sleepy", slow())
        execution_id = await start(api, "sleepy")
        await anyio.sleep(0.2)
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        execution = await Api(client).ok("GET", f"/promptrun/v1/workflow-executions/{execution_id}")
    assert (execution["status"], execution["error_message"]) == ("FAILED", "the server stopped")
    assert execution["nodes"][0]["status"] == "FAILED"
