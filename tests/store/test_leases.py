"""Leases on running workflow executions, on both stores."""

from __future__ import annotations

import asyncio
import time

import pytest

from promptrun.server.store.base import NewWorkflowVersion, NodeRow, Store, WorkflowVersion

from .conftest import Workspaces

pytestmark = pytest.mark.anyio

DEFINITION = {"nodes": [{"name": "out", "type": "VARIABLE", "is_output_node": True}]}


def failed_node(message: str) -> NodeRow:
    return NodeRow(
        name="out", type="VARIABLE", status="FAILED", value=None, error_message=message,
        raw_error_message=None, is_output_node=True, started_at=None, finished_at=None,
    )  # fmt: skip


async def flow(store: Store, workspace: int) -> WorkflowVersion:
    return await store.publish_workflow(
        workspace, NewWorkflowVersion(name="flow", definition=DEFINITION)
    )


async def test_renewing_extends_the_owners_running_executions_only(
    store: Store, spaces: Workspaces
) -> None:
    version = await flow(store, spaces.ws)
    now = time.time()

    async def start(owner: str) -> int:
        return await store.create_workflow_execution(
            spaces.ws, version, input_variables={}, metadata={}, return_all_outputs=False,
            lease_owner=owner, lease_expires=now + 5, channel="workflows:1:run:x",
        )  # fmt: skip

    mine, done, theirs = await start("me"), await start("me"), await start("them")
    await store.finish_workflow_execution(spaces.ws, done, status="SUCCESS", nodes=[])
    assert await store.renew_leases("me", now + 60) == [mine]
    assert [e.id for e in await store.expired_executions(now + 10)] == [theirs]
    assert [e.id for e in await store.expired_executions(now + 61)] == [mine, theirs]
    assert await store.expired_executions(now) == []


async def test_an_expired_execution_is_failed_once_with_its_nodes_and_channel(
    store: Store, spaces: Workspaces
) -> None:
    version = await flow(store, spaces.ws)
    now = time.time()
    execution_id = await store.create_workflow_execution(
        spaces.ws, version, input_variables={}, metadata={}, return_all_outputs=True,
        lease_owner="gone", lease_expires=now - 1, channel="workflows:9:run:abc",
    )  # fmt: skip
    (expired,) = await store.expired_executions(now)
    assert (expired.id, expired.workspace, expired.channel, expired.lease_owner) == (
        execution_id, spaces.ws, "workflows:9:run:abc", "gone",
    )  # fmt: skip
    assert expired.return_all_outputs is True and expired.definition == DEFINITION
    results = await asyncio.gather(
        *(
            store.fail_expired_execution(
                expired,
                expired_before=now,
                message="its server stopped",
                nodes=[failed_node("its server stopped")],
            )
            for _ in range(3)
        )
    )
    assert sorted(results) == [False, False, True]
    stored = await store.get_workflow_execution(spaces.ws, execution_id)
    assert (stored["status"], stored["error_message"]) == ("FAILED", "its server stopped")
    assert [(n["name"], n["status"]) for n in stored["nodes"]] == [("out", "FAILED")]
    # The process that ran it, back after all, cannot overwrite the failure.
    assert not await store.finish_workflow_execution(
        spaces.ws, execution_id, status="SUCCESS", nodes=[]
    )
    assert await store.expired_executions(now + 3600) == []


async def test_a_renewed_lease_is_not_failed_by_a_process_that_read_it_expired(
    store: Store, spaces: Workspaces
) -> None:
    version = await flow(store, spaces.ws)
    now = time.time()
    execution_id = await store.create_workflow_execution(
        spaces.ws, version, input_variables={}, metadata={}, return_all_outputs=False,
        lease_owner="slow", lease_expires=now - 1,
    )  # fmt: skip
    (expired,) = await store.expired_executions(now)
    assert await store.renew_leases("slow", now + 30) == [execution_id]
    assert not await store.fail_expired_execution(
        expired, expired_before=now, message="x", nodes=[]
    )
    assert (await store.get_workflow_execution(spaces.ws, execution_id))["status"] == "RUNNING"


async def test_executions_from_before_leases_count_as_expired(
    store: Store, spaces: Workspaces
) -> None:
    version = await flow(store, spaces.ws)
    execution_id = await store.create_workflow_execution(
        spaces.ws, version, input_variables={}, metadata={}, return_all_outputs=False
    )
    assert [e.id for e in await store.expired_executions(time.time())] == [execution_id]
