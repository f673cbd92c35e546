"""Workflows: versions with release labels (like templates), executions, node results.

How a version is chosen is :class:`~promptrun.server.store.base.WorkflowStore`'s docstring.
A publish upserts the workflow's row first, which on PostgreSQL locks it until the transaction
ends, so processes publishing one workflow at once number every version. Error texts a
database cannot hold are stored as near as it can (``Dialect.safe_text``): an execution's
record matters more than one character of its error message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from promptrun.server.store.base import (
    NewWorkflowVersion,
    NodeRow,
    NotFoundError,
    WorkflowVersion,
)
from promptrun.server.store.queries._sql import (
    Op,
    Row,
    executemany,
    fetch,
    fetchrow,
    fetchval,
)
from promptrun.server.store.queries._versions import labels_of_version, pick_version
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.requests import in_int64
from promptrun.server.store.queries.templates import json_text

__all__ = [
    "create_execution",
    "finish_execution",
    "get_execution",
    "list_executions",
    "list_workflows",
    "publish_workflow",
    "select_workflow",
    "store_nodes",
]

_decode = msgspec.json.decode
_VERSION_COLUMNS = "v.id, v.number, v.definition, v.commit_message, v.created_at"


def _missing(ref: int | str) -> NotFoundError:
    return NotFoundError(
        f"workflow {ref!r} not found in this workspace; publish it first (POST /rest/workflows)"
    )


def _find(d: Dialect, workspace: int, ref: int | str) -> Op[tuple[int, str]]:
    row = None
    if isinstance(ref, str):
        if not d.text_ok(ref):
            raise _missing(ref)
        row = yield from fetchrow(
            "SELECT id, name FROM workflows WHERE workspace_id = $1 AND name = $2", workspace, ref
        )
        if row is None and ref.isascii() and ref.isdigit() and len(ref) <= 18:
            ref = int(ref)
    if row is None and isinstance(ref, int) and in_int64(ref):
        row = yield from fetchrow(
            "SELECT id, name FROM workflows WHERE workspace_id = $1 AND id = $2", workspace, ref
        )
    if row is None:
        raise _missing(ref)
    return int(row[0]), str(row[1])


def _version(d: Dialect, workflow_id: int, name: str, row: Row) -> Op[WorkflowVersion]:
    version_id, number, definition, commit_message, created_at = row
    labels = yield from labels_of_version("workflow", version_id)
    return WorkflowVersion(
        workflow_id=workflow_id,
        name=name,
        version_id=version_id,
        number=number,
        definition=_decode(definition) if isinstance(definition, str) else definition,
        commit_message=commit_message,
        release_labels=labels,
        created_at=created_at,
    )


def select_workflow(
    d: Dialect,
    workspace: int,
    ref: int | str,
    *,
    version: int | None = None,
    label: str | None = None,
) -> Op[WorkflowVersion]:
    workflow_id, name = yield from _find(d, workspace, ref)
    row = yield from pick_version(d, "workflow", workflow_id, name, version=version, label=label)
    if row is None:
        row = yield from fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM workflow_versions v WHERE v.workflow_id = $1 "
            "ORDER BY v.number DESC LIMIT 1",
            workflow_id,
        )
    assert row is not None  # a workflow always has a version: publish creates both
    return (yield from _version(d, workflow_id, name, row))


def publish_workflow(
    d: Dialect, workspace: int, new: NewWorkflowVersion, now: float
) -> Op[WorkflowVersion]:
    """Append version N+1 (creating the workflow if new) and move the labels to it."""
    d.check_text(new.name, new.commit_message, *new.release_labels)
    workflow_id = yield from fetchval(
        "INSERT INTO workflows (workspace_id, name, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (workspace_id, name) DO UPDATE SET name = excluded.name RETURNING id",
        workspace,
        new.name,
        now,
    )
    number = yield from fetchval(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM workflow_versions WHERE workflow_id = $1",
        workflow_id,
    )
    version_id = yield from fetchval(
        "INSERT INTO workflow_versions (workflow_id, number, definition, commit_message, "
        "created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        workflow_id,
        number,
        json_text(new.definition),
        new.commit_message,
        now,
    )
    yield from executemany(
        "INSERT INTO workflow_labels (workflow_id, label, version_id) VALUES ($1, $2, $3) "
        "ON CONFLICT (workflow_id, label) DO UPDATE SET version_id = excluded.version_id",
        [(workflow_id, label, version_id) for label in sorted(set(new.release_labels))],
    )
    row = (version_id, number, new.definition, new.commit_message, now)
    return (yield from _version(d, workflow_id, new.name, row))


def list_workflows(
    d: Dialect, workspace: int, *, page: int, per_page: int
) -> Op[tuple[list[WorkflowVersion], int]]:
    """One page of workflows, oldest first, each at its latest version."""
    total = yield from fetchval("SELECT COUNT(*) FROM workflows WHERE workspace_id = $1", workspace)
    ids = yield from fetch(
        "SELECT id FROM workflows WHERE workspace_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
        workspace,
        per_page,
        (page - 1) * per_page,
    )
    found: list[WorkflowVersion] = []
    for (workflow_id,) in ids:
        found.append((yield from select_workflow(d, workspace, int(workflow_id))))
    return found, int(total)


def create_execution(
    d: Dialect,
    workspace: int,
    version: WorkflowVersion,
    *,
    input_variables: dict[str, Any],
    metadata: dict[str, Any],
    return_all_outputs: bool,
    now: float,
    lease_owner: str | None = None,
    lease_expires: float | None = None,
    channel: str | None = None,
) -> Op[int]:
    execution_id = yield from fetchval(
        "INSERT INTO workflow_executions (workspace_id, workflow_id, version_id, status, "
        "input_variables, metadata, return_all_outputs, started_at, lease_owner, "
        "lease_expires, channel) "
        "VALUES ($1, $2, $3, 'RUNNING', $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        workspace,
        version.workflow_id,
        version.version_id,
        json_text(input_variables),
        json_text(metadata),
        return_all_outputs,
        now,
        lease_owner,
        lease_expires,
        channel,
    )
    return int(execution_id)


def finish_execution(
    d: Dialect,
    workspace: int,
    execution_id: int,
    *,
    status: str,
    nodes: Sequence[NodeRow],
    error_message: str | None,
    now: float,
) -> Op[bool]:
    """Only a RUNNING execution: one whose lease expired may have been failed meanwhile."""
    updated = None
    if in_int64(execution_id):
        updated = yield from fetchval(
            "UPDATE workflow_executions SET status = $1, error_message = $2, finished_at = $3 "
            "WHERE id = $4 AND workspace_id = $5 AND status = 'RUNNING' RETURNING id",
            status,
            d.safe_text(error_message),
            now,
            execution_id,
            workspace,
        )
        if updated is None:
            ended = yield from fetchval(
                "SELECT id FROM workflow_executions WHERE id = $1 AND workspace_id = $2",
                execution_id,
                workspace,
            )
            if ended is not None:
                return False
    if updated is None:
        raise NotFoundError(f"workflow execution {execution_id} not found in this workspace")
    yield from store_nodes(d, execution_id, nodes)
    return True


def store_nodes(d: Dialect, execution_id: int, nodes: Sequence[NodeRow]) -> Op[None]:
    safe = d.safe_text
    yield from executemany(
        "INSERT INTO workflow_node_results (execution_id, position, node_name, node_type, "
        "status, value, error_message, raw_error_message, is_output_node, started_at, "
        "finished_at, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        "ON CONFLICT (execution_id, node_name) DO UPDATE SET position = excluded.position, "
        "node_type = excluded.node_type, status = excluded.status, value = excluded.value, "
        "error_message = excluded.error_message, "
        "raw_error_message = excluded.raw_error_message, "
        "is_output_node = excluded.is_output_node, started_at = excluded.started_at, "
        "finished_at = excluded.finished_at, request_id = excluded.request_id",
        [
            (
                execution_id, position, safe(n.name), safe(n.type), safe(n.status), n.value,
                safe(n.error_message), safe(n.raw_error_message), n.is_output_node,
                n.started_at, n.finished_at, n.request_id,
            )
            for position, n in enumerate(nodes)
        ],
    )  # fmt: skip


_EXECUTION_COLUMNS = (
    "e.id, e.workflow_id, w.name, v.number, e.status, e.input_variables, e.metadata, "
    "e.return_all_outputs, e.error_message, e.started_at, e.finished_at"
)
_EXECUTION_JOINS = (
    "FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id "
    "JOIN workflow_versions v ON v.id = e.version_id"
)


def _duration_ms(started: float | None, finished: float | None) -> float | None:
    return None if started is None or finished is None else round((finished - started) * 1000, 3)


def _execution(row: Row) -> dict[str, Any]:
    (
        execution_id, workflow_id, name, number, status, variables, metadata,
        return_all_outputs, error_message, started_at, finished_at,
    ) = row  # fmt: skip
    return {
        "id": execution_id,
        "workflow_version_execution_id": execution_id,
        "workflow_id": workflow_id,
        "workflow_name": name,
        "version_number": number,
        "status": status,
        "input_variables": _decode(variables),
        "metadata": _decode(metadata),
        "return_all_outputs": bool(return_all_outputs),
        "error_message": error_message,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_ms": _duration_ms(started_at, finished_at),
    }


def list_executions(
    d: Dialect,
    workspace: int,
    *,
    workflow: int | str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> Op[tuple[list[dict[str, Any]], int]]:
    """Newest first, without node results."""
    where = "e.workspace_id = $1"
    args: tuple[Any, ...] = (workspace,)
    if workflow is not None:
        workflow_id, _ = yield from _find(d, workspace, workflow)
        args += (workflow_id,)
        where += f" AND e.workflow_id = ${len(args)}"
    if status is not None:
        if not d.text_ok(status):
            return [], 0
        args += (status,)
        where += f" AND e.status = ${len(args)}"
    total = yield from fetchval(f"SELECT COUNT(*) {_EXECUTION_JOINS} WHERE {where}", *args)
    n = len(args)
    rows = yield from fetch(
        f"SELECT {_EXECUTION_COLUMNS} {_EXECUTION_JOINS} WHERE {where} "
        f"ORDER BY e.id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return [_execution(row) for row in rows], int(total)


def get_execution(d: Dialect, workspace: int, execution_id: int) -> Op[dict[str, Any]]:
    """One execution with its node results (in definition order) under ``"nodes"``."""
    row = None
    if in_int64(execution_id):
        row = yield from fetchrow(
            f"SELECT {_EXECUTION_COLUMNS} {_EXECUTION_JOINS} "
            "WHERE e.id = $1 AND e.workspace_id = $2",
            execution_id,
            workspace,
        )
    if row is None:
        raise NotFoundError(f"workflow execution {execution_id} not found in this workspace")
    execution = _execution(row)
    nodes = yield from fetch(
        "SELECT node_name, node_type, status, value, error_message, raw_error_message, "
        "is_output_node, started_at, finished_at, request_id FROM workflow_node_results "
        "WHERE execution_id = $1 ORDER BY position",
        execution_id,
    )
    execution["nodes"] = [
        {
            "name": name,
            "type": kind,
            "status": status,
            "value": None if value is None else _decode(value),
            "error_message": error,
            "raw_error_message": raw,
            "is_output_node": bool(output),
            "started_at": started,
            "finished_at": finished,
            "duration_ms": _duration_ms(started, finished),
            "request_id": request_id,
        }
        for name, kind, status, value, error, raw, output, started, finished, request_id in nodes
    ]
    return execution
