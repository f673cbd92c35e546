"""Workflow storage on PostgreSQL: versions with release labels, executions, node results.

The rules of :mod:`promptrun.server.store._workflows` (read its docstring) on an asyncpg
connection, and :class:`PostgresWorkflows`, the ``WorkflowStore`` the routes use. A publish
locks its workflow's row, so processes publishing one workflow at once number every version.
Error texts with a NUL character (which PostgreSQL text cannot hold) are stored with U+FFFD in
its place: an execution's record matters more than one character of its error message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from promptrun.server.store._pg_db import Conn
from promptrun.server.store._pg_requests import check_text
from promptrun.server.store._workflows import (
    NewWorkflowVersion,
    NodeRow,
    WorkflowVersion,
    _decode,
    _execution,
    _json,
)
from promptrun.server.store.base import NotFoundError

if TYPE_CHECKING:
    from promptrun.server.store.postgres import PostgresStore

__all__ = ["MIGRATION", "PostgresWorkflows"]

MIGRATION = """
CREATE TABLE workflows (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE workflow_versions (
    id BIGSERIAL PRIMARY KEY,
    workflow_id BIGINT NOT NULL REFERENCES workflows(id),
    number BIGINT NOT NULL,
    definition TEXT NOT NULL,
    commit_message TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (workflow_id, number)
);
CREATE TABLE workflow_labels (
    workflow_id BIGINT NOT NULL REFERENCES workflows(id),
    label TEXT NOT NULL,
    version_id BIGINT NOT NULL REFERENCES workflow_versions(id),
    PRIMARY KEY (workflow_id, label)
);
CREATE INDEX workflow_labels_version ON workflow_labels (version_id);
CREATE TABLE workflow_executions (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id),
    workflow_id BIGINT NOT NULL REFERENCES workflows(id),
    version_id BIGINT NOT NULL REFERENCES workflow_versions(id),
    status TEXT NOT NULL,
    input_variables TEXT NOT NULL,
    metadata TEXT NOT NULL,
    return_all_outputs BOOLEAN NOT NULL,
    error_message TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
CREATE INDEX workflow_executions_newest ON workflow_executions (workspace_id, id);
CREATE INDEX workflow_executions_by_workflow
    ON workflow_executions (workspace_id, workflow_id, id);
CREATE TABLE workflow_node_results (
    execution_id BIGINT NOT NULL REFERENCES workflow_executions(id),
    position BIGINT NOT NULL,
    node_name TEXT NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    value TEXT,
    error_message TEXT,
    raw_error_message TEXT,
    is_output_node BOOLEAN NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    request_id BIGINT,
    PRIMARY KEY (execution_id, node_name)
);
"""


def _safe(text: str | None) -> str | None:
    return None if text is None else text.replace("\x00", "\ufffd")


async def _labels(conn: Conn, version_id: int) -> list[str]:
    rows = await conn.fetch(
        'SELECT label FROM workflow_labels WHERE version_id = $1 ORDER BY label COLLATE "C"',
        version_id,
    )
    return [row[0] for row in rows]


def _missing(ref: int | str) -> NotFoundError:
    return NotFoundError(
        f"workflow {ref!r} not found in this workspace; publish it first (POST /rest/workflows)"
    )


async def _find(conn: Conn, workspace: int, ref: int | str) -> tuple[int, str]:
    row = None
    if isinstance(ref, str):
        if "\x00" in ref:
            raise _missing(ref)
        row = await conn.fetchrow(
            "SELECT id, name FROM workflows WHERE workspace_id = $1 AND name = $2", workspace, ref
        )
        if row is None and ref.isascii() and ref.isdigit() and len(ref) <= 18:
            ref = int(ref)
    if row is None and isinstance(ref, int) and -(2**63) <= ref < 2**63:
        row = await conn.fetchrow(
            "SELECT id, name FROM workflows WHERE workspace_id = $1 AND id = $2", workspace, ref
        )
    if row is None:
        raise _missing(ref)
    return int(row[0]), str(row[1])


_VERSION_COLUMNS = "v.id, v.number, v.definition, v.commit_message, v.created_at"


async def select_workflow(
    conn: Conn,
    workspace: int,
    ref: int | str,
    *,
    version: int | None = None,
    label: str | None = None,
) -> WorkflowVersion:
    workflow_id, name = await _find(conn, workspace, ref)
    row: asyncpg.Record | None
    if version is not None:
        row = await conn.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM workflow_versions v "
            "WHERE v.workflow_id = $1 AND v.number = $2",
            workflow_id,
            version,
        )
        if row is None:
            latest = await conn.fetchval(
                "SELECT MAX(number) FROM workflow_versions WHERE workflow_id = $1", workflow_id
            )
            raise NotFoundError(
                f"workflow {name!r} has no version {version}; versions are 1..{latest}"
            )
    elif label is not None:
        row = None
        if "\x00" not in label:
            row = await conn.fetchrow(
                f"SELECT {_VERSION_COLUMNS} FROM workflow_labels l "
                "JOIN workflow_versions v ON v.id = l.version_id "
                "WHERE l.workflow_id = $1 AND l.label = $2",
                workflow_id,
                label,
            )
        if row is None:
            known = await conn.fetch(
                "SELECT label FROM workflow_labels WHERE workflow_id = $1 "
                'ORDER BY label COLLATE "C"',
                workflow_id,
            )
            names = ", ".join(repr(r[0]) for r in known) or "none"
            raise NotFoundError(
                f"workflow {name!r} has no release label {label!r}; its labels: {names}"
            )
    else:
        row = await conn.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM workflow_versions v WHERE v.workflow_id = $1 "
            "ORDER BY v.number DESC LIMIT 1",
            workflow_id,
        )
    assert row is not None  # a workflow always has a version: publish creates both
    version_id, number, definition, commit_message, created_at = row
    return WorkflowVersion(
        workflow_id=workflow_id,
        name=name,
        version_id=version_id,
        number=number,
        definition=_decode(definition),
        commit_message=commit_message,
        release_labels=await _labels(conn, version_id),
        created_at=created_at,
    )


async def publish_workflow(
    conn: Conn, workspace: int, new: NewWorkflowVersion, now: float
) -> WorkflowVersion:
    """Append version N+1 (creating the workflow if new) and move the labels to it."""
    check_text(new.name, new.commit_message, *new.release_labels)
    # The upsert locks the workflow's row until the transaction ends.
    workflow_id = await conn.fetchval(
        "INSERT INTO workflows (workspace_id, name, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (workspace_id, name) DO UPDATE SET name = excluded.name RETURNING id",
        workspace,
        new.name,
        now,
    )
    number = await conn.fetchval(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM workflow_versions WHERE workflow_id = $1",
        workflow_id,
    )
    version_id = await conn.fetchval(
        "INSERT INTO workflow_versions (workflow_id, number, definition, commit_message, "
        "created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        workflow_id,
        number,
        _json(new.definition),
        new.commit_message,
        now,
    )
    if new.release_labels:
        await conn.execute(
            "INSERT INTO workflow_labels (workflow_id, label, version_id) "
            "SELECT $1, label, $3 FROM unnest($2::text[]) AS label "
            "ON CONFLICT (workflow_id, label) DO UPDATE SET version_id = excluded.version_id",
            workflow_id,
            sorted(set(new.release_labels)),
            version_id,
        )
    return WorkflowVersion(
        workflow_id=workflow_id,
        name=new.name,
        version_id=version_id,
        number=number,
        definition=new.definition,
        commit_message=new.commit_message,
        release_labels=await _labels(conn, version_id),
        created_at=now,
    )


async def list_workflows(
    conn: Conn, workspace: int, *, page: int, per_page: int
) -> tuple[list[WorkflowVersion], int]:
    """One page of workflows, oldest first, each at its latest version."""
    total = await conn.fetchval("SELECT COUNT(*) FROM workflows WHERE workspace_id = $1", workspace)
    ids = await conn.fetch(
        "SELECT id FROM workflows WHERE workspace_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
        workspace,
        per_page,
        (page - 1) * per_page,
    )
    return [await select_workflow(conn, workspace, int(row[0])) for row in ids], int(total)


_EXECUTION_COLUMNS = (
    "e.id, e.workflow_id, w.name, v.number, e.status, e.input_variables, e.metadata, "
    "e.return_all_outputs, e.error_message, e.started_at, e.finished_at"
)
_EXECUTION_JOINS = (
    "FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id "
    "JOIN workflow_versions v ON v.id = e.version_id"
)


async def list_executions(
    conn: Conn,
    workspace: int,
    *,
    workflow: int | str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, without node results."""
    workflow_id = None if workflow is None else (await _find(conn, workspace, workflow))[0]
    if status is not None and "\x00" in status:
        return [], 0
    # NULL filters match everything, so one statement serves every combination.
    where = (
        "e.workspace_id = $1 AND ($2::int8 IS NULL OR e.workflow_id = $2) "
        "AND ($3::text IS NULL OR e.status = $3)"
    )
    total = await conn.fetchval(
        f"SELECT COUNT(*) {_EXECUTION_JOINS} WHERE {where}", workspace, workflow_id, status
    )
    rows = await conn.fetch(
        f"SELECT {_EXECUTION_COLUMNS} {_EXECUTION_JOINS} WHERE {where} "
        "ORDER BY e.id DESC LIMIT $4 OFFSET $5",
        workspace,
        workflow_id,
        status,
        limit,
        offset,
    )
    return [_execution(tuple(row)) for row in rows], int(total)


async def get_execution(conn: Conn, workspace: int, execution_id: int) -> dict[str, Any]:
    """One execution with its node results (in definition order) under ``"nodes"``."""
    row = None
    if -(2**63) <= execution_id < 2**63:
        row = await conn.fetchrow(
            f"SELECT {_EXECUTION_COLUMNS} {_EXECUTION_JOINS} "
            "WHERE e.id = $1 AND e.workspace_id = $2",
            execution_id,
            workspace,
        )
    if row is None:
        raise NotFoundError(f"workflow execution {execution_id} not found in this workspace")
    execution = _execution(tuple(row))
    nodes = await conn.fetch(
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
            "duration_ms": None
            if started is None or finished is None
            else round((finished - started) * 1000, 3),
            "request_id": request_id,
        }
        for name, kind, status, value, error, raw, output, started, finished, request_id in nodes
    ]
    return execution


async def create_execution(
    conn: Conn,
    workspace: int,
    version: WorkflowVersion,
    *,
    input_variables: dict[str, Any],
    metadata: dict[str, Any],
    return_all_outputs: bool,
    now: float,
) -> int:
    execution_id = await conn.fetchval(
        "INSERT INTO workflow_executions (workspace_id, workflow_id, version_id, status, "
        "input_variables, metadata, return_all_outputs, started_at) "
        "VALUES ($1, $2, $3, 'RUNNING', $4, $5, $6, $7) RETURNING id",
        workspace,
        version.workflow_id,
        version.version_id,
        _json(input_variables),
        _json(metadata),
        return_all_outputs,
        now,
    )
    return int(execution_id)


async def finish_execution(
    conn: Conn,
    workspace: int,
    execution_id: int,
    *,
    status: str,
    nodes: Sequence[NodeRow],
    error_message: str | None,
    now: float,
) -> None:
    updated = await conn.fetchval(
        "UPDATE workflow_executions SET status = $1, error_message = $2, finished_at = $3 "
        "WHERE id = $4 AND workspace_id = $5 RETURNING id",
        status,
        _safe(error_message),
        now,
        execution_id,
        workspace,
    )
    if updated is None:
        raise NotFoundError(f"workflow execution {execution_id} not found in this workspace")
    await conn.executemany(
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
                execution_id, position, _safe(n.name), _safe(n.type), _safe(n.status), n.value,
                _safe(n.error_message), _safe(n.raw_error_message), n.is_output_node,
                n.started_at, n.finished_at, n.request_id,
            )
            for position, n in enumerate(nodes)
        ],
    )  # fmt: skip


class PostgresWorkflows:
    """The ``WorkflowStore`` on a :class:`~promptrun.server.store.postgres.PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def publish_workflow(self, workspace: int, new: NewWorkflowVersion) -> WorkflowVersion:
        return await self._store.write(
            lambda conn: publish_workflow(conn, workspace, new, time.time())
        )

    async def get_workflow(
        self,
        workspace: int,
        ref: int | str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> WorkflowVersion:
        return await self._store.read(
            lambda conn: select_workflow(conn, workspace, ref, version=version, label=label)
        )

    async def list_workflows(
        self, workspace: int, *, page: int, per_page: int
    ) -> tuple[list[WorkflowVersion], int]:
        return await self._store.read(
            lambda conn: list_workflows(conn, workspace, page=page, per_page=per_page)
        )

    async def create_workflow_execution(
        self,
        workspace: int,
        version: WorkflowVersion,
        *,
        input_variables: dict[str, Any],
        metadata: dict[str, Any],
        return_all_outputs: bool,
    ) -> int:
        return await self._store.write(
            lambda conn: create_execution(
                conn,
                workspace,
                version,
                input_variables=input_variables,
                metadata=metadata,
                return_all_outputs=return_all_outputs,
                now=time.time(),
            )
        )

    async def finish_workflow_execution(
        self,
        workspace: int,
        execution_id: int,
        *,
        status: str,
        nodes: Sequence[NodeRow],
        error_message: str | None = None,
    ) -> None:
        await self._store.write(
            lambda conn: finish_execution(
                conn,
                workspace,
                execution_id,
                status=status,
                nodes=nodes,
                error_message=error_message,
                now=time.time(),
            )
        )

    async def list_workflow_executions(
        self,
        workspace: int,
        *,
        workflow: int | str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._store.read(
            lambda conn: list_executions(
                conn, workspace, workflow=workflow, status=status, limit=limit, offset=offset
            )
        )

    async def get_workflow_execution(self, workspace: int, execution_id: int) -> dict[str, Any]:
        return await self._store.read(lambda conn: get_execution(conn, workspace, execution_id))
