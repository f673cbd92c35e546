"""Leases on running workflow executions: how a process that died is noticed.

The process running an execution holds its lease (``lease_owner``, ``lease_expires``) and
renews it for all of its executions in one statement every few seconds. A RUNNING execution
whose lease has expired belongs to a process that stopped (killed, crashed, lost its
database): any process may then mark it FAILED, once (the update checks it is still RUNNING
and still expired), and push its failure on the execution's channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from promptrun.server.store.base import ExpiredExecution, NodeRow
from promptrun.server.store.queries._sql import Op, fetch, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.workflows import store_nodes

__all__ = ["expired_executions", "fail_expired_execution", "renew_leases"]


def renew_leases(d: Dialect, owner: str, expires: float) -> Op[list[int]]:
    rows = yield from fetch(
        "UPDATE workflow_executions SET lease_expires = $1 "
        "WHERE lease_owner = $2 AND status = 'RUNNING' RETURNING id",
        expires,
        owner,
    )
    return sorted(int(execution_id) for (execution_id,) in rows)


def _definition(text: str) -> dict[str, object]:
    try:
        found = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def expired_executions(d: Dialect, now: float, *, limit: int) -> Op[list[ExpiredExecution]]:
    rows = yield from fetch(
        "SELECT e.id, e.workspace_id, e.channel, e.return_all_outputs, v.definition, "
        "e.lease_owner FROM workflow_executions e "
        "JOIN workflow_versions v ON v.id = e.version_id "
        "WHERE e.status = 'RUNNING' AND (e.lease_expires IS NULL OR e.lease_expires < $1) "
        "ORDER BY e.id LIMIT $2",
        now,
        limit,
    )
    return [
        ExpiredExecution(
            id=int(execution_id),
            workspace=int(workspace),
            channel=None if channel is None else str(channel),
            return_all_outputs=bool(return_all),
            definition=_definition(str(definition)),
            lease_owner=None if owner is None else str(owner),
        )
        for execution_id, workspace, channel, return_all, definition, owner in rows
    ]


def fail_expired_execution(
    d: Dialect,
    execution: ExpiredExecution,
    *,
    expired_before: float,
    message: str,
    nodes: Sequence[NodeRow],
    now: float,
) -> Op[bool]:
    failed = yield from fetchval(
        "UPDATE workflow_executions SET status = 'FAILED', error_message = $1, finished_at = $2 "
        "WHERE id = $3 AND status = 'RUNNING' AND (lease_expires IS NULL OR lease_expires < $4) "
        "RETURNING id",
        d.safe_text(message),
        now,
        execution.id,
        expired_before,
    )
    if failed is None:
        return False
    yield from store_nodes(d, execution.id, nodes)
    return True
