"""Workflows and their executions on both stores."""

from __future__ import annotations

import pytest

from promptrun.server.store.base import NewWorkflowVersion, NodeRow, NotFoundError, Store

from .conftest import Workspaces

pytestmark = pytest.mark.anyio

DEFINITION = {"nodes": [{"name": "a", "type": "VARIABLE", "is_output_node": True}]}


def node(name: str, status: str = "SUCCESS", **fields: object) -> NodeRow:
    values: dict[str, object] = {
        "name": name, "type": "VARIABLE", "status": status, "value": '"x"',
        "error_message": None, "raw_error_message": None, "is_output_node": name == "b",
        "started_at": 10.0, "finished_at": 10.25,
    }  # fmt: skip
    values.update(fields)
    return NodeRow(**values)  # type: ignore[arg-type]


async def test_workflow_versions_are_found_by_name_id_version_and_label(
    store: Store, spaces: Workspaces
) -> None:
    new = NewWorkflowVersion(name="flow", definition=DEFINITION, release_labels=["prod"])
    first = await store.publish_workflow(spaces.ws, new)
    second = await store.publish_workflow(
        spaces.ws, NewWorkflowVersion(name="flow", definition={"nodes": []}, commit_message="2")
    )
    assert (first.number, second.number, second.workflow_id) == (1, 2, first.workflow_id)
    assert first.release_labels == ["prod"] and second.release_labels == []
    assert (await store.get_workflow(spaces.ws, "flow")).number == 2
    assert (await store.get_workflow(spaces.ws, first.workflow_id)).definition == {"nodes": []}
    assert (await store.get_workflow(spaces.ws, str(first.workflow_id))).name == "flow"
    assert (await store.get_workflow(spaces.ws, "flow", label="prod")).definition == DEFINITION
    assert (await store.get_workflow(spaces.ws, "flow", version=2)).commit_message == "2"
    with pytest.raises(NotFoundError, match=r"has no version 3; versions are 1\.\.2"):
        await store.get_workflow(spaces.ws, "flow", version=3)
    with pytest.raises(NotFoundError, match="no release label 'dev'; its labels: 'prod'"):
        await store.get_workflow(spaces.ws, "flow", label="dev")
    for ref in ("nope", first.workflow_id + 99, 2**70, "fl\x00ow"):
        with pytest.raises(NotFoundError, match="publish it first"):
            await store.get_workflow(spaces.ws, ref)
    with pytest.raises(NotFoundError):
        await store.get_workflow(spaces.other, first.workflow_id)
    items, total = await store.list_workflows(spaces.ws, page=1, per_page=10)
    assert (total, [(w.name, w.number) for w in items]) == (1, [("flow", 2)])


async def test_executions_are_stored_finished_and_read_back_node_by_node(
    store: Store, spaces: Workspaces
) -> None:
    flow = await store.publish_workflow(
        spaces.ws, NewWorkflowVersion(name="flow", definition=DEFINITION)
    )
    running = await store.create_workflow_execution(
        spaces.ws, flow, input_variables={"q": 1}, metadata={"m": "n"}, return_all_outputs=True
    )
    done = await store.create_workflow_execution(
        spaces.ws, flow, input_variables={}, metadata={}, return_all_outputs=False
    )
    assert await store.finish_workflow_execution(
        spaces.ws,
        done,
        status="FAILED",
        nodes=[node("b", "FAILED", error_message="bad\x00 input", value=None), node("a")],
        error_message="node b failed",
    )
    # An execution ends once: finishing it again (as a process whose lease another process
    # found expired would) changes nothing and says so.
    assert not await store.finish_workflow_execution(
        spaces.ws, done, status="SUCCESS", nodes=[node("c")], error_message=None
    )
    execution = await store.get_workflow_execution(spaces.ws, done)
    assert (execution["status"], execution["error_message"]) == ("FAILED", "node b failed")
    assert execution["workflow_name"] == "flow" and execution["return_all_outputs"] is False
    assert [(n["name"], n["status"], n["value"]) for n in execution["nodes"]] == [
        ("b", "FAILED", None),
        ("a", "SUCCESS", "x"),
    ]
    assert execution["nodes"][0]["error_message"] in ("bad\x00 input", "bad\ufffd input")
    assert execution["nodes"][1]["duration_ms"] == 250.0
    assert execution["nodes"][0]["is_output_node"] is True
    items, total = await store.list_workflow_executions(
        spaces.ws, workflow=None, status=None, limit=10, offset=0
    )
    assert (total, [i["id"] for i in items]) == (2, [done, running])
    assert items[1]["input_variables"] == {"q": 1} and items[1]["finished_at"] is None
    items, total = await store.list_workflow_executions(
        spaces.ws, workflow="flow", status="RUNNING", limit=10, offset=0
    )
    assert [i["id"] for i in items] == [running]
    none = await store.list_workflow_executions(
        spaces.ws, workflow=None, status="\x00", limit=10, offset=0
    )
    assert none == ([], 0)
    with pytest.raises(NotFoundError, match="not found in this workspace"):
        await store.get_workflow_execution(spaces.other, done)
    with pytest.raises(NotFoundError, match="not found in this workspace"):
        await store.finish_workflow_execution(spaces.other, done, status="SUCCESS", nodes=[])
    with pytest.raises(NotFoundError):
        await store.get_workflow_execution(spaces.ws, 2**70)
