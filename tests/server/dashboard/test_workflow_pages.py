"""Workflow pages: definitions, executions, and each node's status, value, error and timing."""

from __future__ import annotations

import re

import anyio
import pytest

from ._dash import OTHER_KEY, Visitor

pytestmark = pytest.mark.anyio

SHOUTER = {
    "input_variables": ["who"],
    "nodes": [
        {"name": "greeting", "type": "value", "configuration": {"value": "hello"}},
        {
            "name": "shout",
            "type": "code",
            "configuration": {"code": "return (text + ' ' + who).upper()"},
            "inputs": {"text": "greeting", "who": "who"},
            "is_output_node": True,
        },
        {
            "name": "broken",
            "type": "code",
            "configuration": {"code": "return 1 / 0"},
            "dependencies": ["greeting"],
        },
    ],
}


async def run_to_the_end(visitor: Visitor, name: str, variables: dict[str, str]) -> int:
    started = await visitor.api(f"/workflows/{name}/run", {"input_variables": variables})
    execution_id = int(started["workflow_version_execution_id"])
    with anyio.fail_after(30):
        while True:
            async with visitor.client.get(
                f"/promptrun/v1/workflow-executions/{execution_id}",
                headers={"X-API-KEY": "pl_test_dashboard_key"},
            ) as answer:
                if (await answer.json())["status"] != "RUNNING":
                    return execution_id
            await anyio.sleep(0.05)


async def test_with_no_workflows_the_page_says_so(signed_in: Visitor) -> None:
    status, page = await signed_in.get("/dashboard/workflows")
    assert status == 200
    assert "No workflows in this workspace yet" in page


async def test_an_execution_page_shows_each_nodes_status_value_error_and_timing(
    signed_in: Visitor,
) -> None:
    await signed_in.api(
        "/rest/workflows",
        {"workflow_name": "shouter", "definition": SHOUTER, "commit_message": "first",
         "release_labels": ["prod"]},
    )  # fmt: skip
    execution_id = await run_to_the_end(signed_in, "shouter", {"who": "<b>ada</b>"})
    _, listing = await signed_in.get("/dashboard/workflows")
    assert f'href="/dashboard/workflows/executions/{execution_id}"' in listing
    assert '<span class="pill label">prod</span>' in listing

    status, page = await signed_in.get(f"/dashboard/workflows/executions/{execution_id}")
    assert status == 200
    rows = dict(re.findall(r"<tr>\s*<td><b>(\w+)</b>(.*?)</tr>", page, re.S))
    assert set(rows) == {"greeting", "shout", "broken"}
    assert 'class="status-SUCCESS">SUCCESS' in rows["shout"]
    assert "HELLO &lt;B&gt;ADA&lt;/B&gt;" in rows["shout"]
    assert "output" in rows["shout"]
    assert 'class="status-FAILED">FAILED' in rows["broken"]
    assert "ZeroDivisionError: division by zero" in rows["broken"]
    assert re.search(r'<td class="num">\+(&lt;)?\d+ ms', rows["shout"])  # offset from the start
    assert page.count('<rect class="span span-') == 3  # one timing bar per node
    assert "<b>ada</b>" not in page


async def test_a_workflow_page_lists_its_nodes_and_latest_executions(signed_in: Visitor) -> None:
    await signed_in.api("/rest/workflows", {"workflow_name": "shouter", "definition": SHOUTER})
    execution_id = await run_to_the_end(signed_in, "shouter", {"who": "bo"})
    status, page = await signed_in.get("/dashboard/workflow?name=shouter")
    assert status == 200
    assert "text ← greeting" in page
    assert "return 1 / 0" in page
    assert f'href="/dashboard/workflows/executions/{execution_id}"' in page


async def test_executions_filter_by_status_and_stay_in_their_workspace(
    signed_in: Visitor,
) -> None:
    await signed_in.api("/rest/workflows", {"workflow_name": "shouter", "definition": SHOUTER})
    execution_id = await run_to_the_end(signed_in, "shouter", {"who": "cy"})
    _, page = await signed_in.get("/dashboard/workflows?status=RUNNING")
    assert f"/dashboard/workflows/executions/{execution_id}" not in page
    _, page = await signed_in.get("/dashboard/workflows?status=SUCCESS&workflow=shouter")
    assert f"/dashboard/workflows/executions/{execution_id}" in page
    await signed_in.post("/dashboard/signout", {})
    await signed_in.sign_in(OTHER_KEY)
    status, _ = await signed_in.get(f"/dashboard/workflows/executions/{execution_id}")
    assert status == 404
