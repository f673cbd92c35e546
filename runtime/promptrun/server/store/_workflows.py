"""Workflow storage: versions with release labels (like templates), executions, node results.

SQL functions of a connection, run on the writer thread (writes) or a reader (reads), and
:class:`SQLiteWorkflows`, the :class:`WorkflowStore` the routes use (``store.workflows``).
Every query is scoped by workspace; an id from another workspace is "not found".

How a version is chosen (``select_workflow``): ``version`` given, that number; ``label`` given,
the version it points at; neither, the latest. ``ref`` is a name, or an id when it is an int
(a string of digits is tried as a name first, then as an id).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import msgspec

from promptrun.server.store._db import ReadPool, WriterThread
from promptrun.server.store.base import NotFoundError

__all__ = [
    "MIGRATION",
    "NewWorkflowVersion",
    "NodeRow",
    "SQLiteWorkflows",
    "WorkflowStore",
    "WorkflowVersion",
    "create_execution",
    "finish_execution",
    "get_execution",
    "list_executions",
    "list_workflows",
    "publish_workflow",
    "select_workflow",
]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

MIGRATION = """
CREATE TABLE workflows (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE workflow_versions (
    id INTEGER PRIMARY KEY,
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    number INTEGER NOT NULL,
    definition TEXT NOT NULL,
    commit_message TEXT,
    created_at REAL NOT NULL,
    UNIQUE (workflow_id, number)
);
CREATE TABLE workflow_labels (
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    label TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES workflow_versions(id),
    PRIMARY KEY (workflow_id, label)
);
CREATE TABLE workflow_executions (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    version_id INTEGER NOT NULL REFERENCES workflow_versions(id),
    status TEXT NOT NULL,
    input_variables TEXT NOT NULL,
    metadata TEXT NOT NULL,
    return_all_outputs INTEGER NOT NULL,
    error_message TEXT,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX workflow_executions_by_workflow ON workflow_executions (workspace_id, workflow_id, id);
CREATE TABLE workflow_node_results (
    execution_id INTEGER NOT NULL REFERENCES workflow_executions(id),
    position INTEGER NOT NULL,
    node_name TEXT NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    value TEXT,
    error_message TEXT,
    raw_error_message TEXT,
    is_output_node INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL,
    request_id INTEGER,
    PRIMARY KEY (execution_id, node_name)
)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowVersion:
    workflow_id: int
    name: str
    version_id: int
    number: int
    definition: dict[str, Any]
    commit_message: str | None
    release_labels: list[str]
    created_at: float

    def view(self) -> dict[str, Any]:
        return {
            "id": self.workflow_id,
            "name": self.name,
            "workflow_name": self.name,
            "version_id": self.version_id,
            "version_number": self.number,
            "release_labels": self.release_labels,
            "commit_message": self.commit_message,
            "definition": self.definition,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NewWorkflowVersion:
    name: str
    definition: dict[str, Any]
    commit_message: str | None = None
    release_labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRow:
    """One node's result as stored; ``value`` is encoded JSON (None for no value)."""

    name: str
    type: str
    status: str
    value: str | None
    error_message: str | None
    raw_error_message: str | None
    is_output_node: bool
    started_at: float | None
    finished_at: float | None
    request_id: int | None = None


def _json(value: Any) -> str:
    return _encode(value).decode()


def _labels(conn: sqlite3.Connection, version_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT label FROM workflow_labels WHERE version_id = ? ORDER BY label", (version_id,)
    ).fetchall()
    return [row[0] for row in rows]


def _find(conn: sqlite3.Connection, workspace: int, ref: int | str) -> tuple[int, str]:
    row = None
    if isinstance(ref, str):
        row = conn.execute(
            "SELECT id, name FROM workflows WHERE workspace_id = ? AND name = ?", (workspace, ref)
        ).fetchone()
        if row is None and ref.isascii() and ref.isdigit() and len(ref) <= 18:
            ref = int(ref)
    if row is None and isinstance(ref, int):
        row = conn.execute(
            "SELECT id, name FROM workflows WHERE workspace_id = ? AND id = ?", (workspace, ref)
        ).fetchone()
    if row is None:
        raise NotFoundError(
            f"workflow {ref!r} not found in this workspace; publish it first (POST /rest/workflows)"
        )
    return int(row[0]), str(row[1])


def select_workflow(
    conn: sqlite3.Connection,
    workspace: int,
    ref: int | str,
    *,
    version: int | None = None,
    label: str | None = None,
) -> WorkflowVersion:
    workflow_id, name = _find(conn, workspace, ref)
    columns = "v.id, v.number, v.definition, v.commit_message, v.created_at"
    if version is not None:
        row = conn.execute(
            f"SELECT {columns} FROM workflow_versions v WHERE v.workflow_id = ? AND v.number = ?",
            (workflow_id, version),
        ).fetchone()
        if row is None:
            latest = conn.execute(
                "SELECT MAX(number) FROM workflow_versions WHERE workflow_id = ?", (workflow_id,)
            ).fetchone()[0]
            raise NotFoundError(
                f"workflow {name!r} has no version {version}; versions are 1..{latest}"
            )
    elif label is not None:
        row = conn.execute(
            f"SELECT {columns} FROM workflow_labels l "
            "JOIN workflow_versions v ON v.id = l.version_id "
            "WHERE l.workflow_id = ? AND l.label = ?",
            (workflow_id, label),
        ).fetchone()
        if row is None:
            known = conn.execute(
                "SELECT label FROM workflow_labels WHERE workflow_id = ? ORDER BY label",
                (workflow_id,),
            ).fetchall()
            names = ", ".join(repr(r[0]) for r in known) or "none"
            raise NotFoundError(
                f"workflow {name!r} has no release label {label!r}; its labels: {names}"
            )
    else:
        row = conn.execute(
            f"SELECT {columns} FROM workflow_versions v WHERE v.workflow_id = ? "
            "ORDER BY v.number DESC LIMIT 1",
            (workflow_id,),
        ).fetchone()
    version_id, number, definition, commit_message, created_at = row
    return WorkflowVersion(
        workflow_id=workflow_id,
        name=name,
        version_id=version_id,
        number=number,
        definition=_decode(definition),
        commit_message=commit_message,
        release_labels=_labels(conn, version_id),
        created_at=created_at,
    )


def publish_workflow(
    conn: sqlite3.Connection, workspace: int, new: NewWorkflowVersion
) -> WorkflowVersion:
    """Append version N+1 (creating the workflow if new) and move the labels to it."""
    now = time.time()
    found = conn.execute(
        "SELECT id FROM workflows WHERE workspace_id = ? AND name = ?", (workspace, new.name)
    ).fetchone()
    if found is None:
        workflow_id = conn.execute(
            "INSERT INTO workflows (workspace_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            (workspace, new.name, now),
        ).fetchone()[0]
    else:
        workflow_id = found[0]
    number = conn.execute(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM workflow_versions WHERE workflow_id = ?",
        (workflow_id,),
    ).fetchone()[0]
    version_id = conn.execute(
        "INSERT INTO workflow_versions (workflow_id, number, definition, commit_message, "
        "created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (workflow_id, number, _json(new.definition), new.commit_message, now),
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO workflow_labels (workflow_id, label, version_id) VALUES (?, ?, ?) "
        "ON CONFLICT (workflow_id, label) DO UPDATE SET version_id = excluded.version_id",
        [(workflow_id, label, version_id) for label in new.release_labels],
    )
    return WorkflowVersion(
        workflow_id=workflow_id,
        name=new.name,
        version_id=version_id,
        number=number,
        definition=new.definition,
        commit_message=new.commit_message,
        release_labels=_labels(conn, version_id),
        created_at=now,
    )


def list_workflows(
    conn: sqlite3.Connection, workspace: int, *, page: int, per_page: int
) -> tuple[list[WorkflowVersion], int]:
    """One page of workflows, oldest first, each at its latest version."""
    total = conn.execute(
        "SELECT COUNT(*) FROM workflows WHERE workspace_id = ?", (workspace,)
    ).fetchone()[0]
    ids = conn.execute(
        "SELECT id FROM workflows WHERE workspace_id = ? ORDER BY id LIMIT ? OFFSET ?",
        (workspace, per_page, (page - 1) * per_page),
    ).fetchall()
    return [select_workflow(conn, workspace, int(row[0])) for row in ids], total


def create_execution(
    conn: sqlite3.Connection,
    workspace: int,
    version: WorkflowVersion,
    *,
    input_variables: dict[str, Any],
    metadata: dict[str, Any],
    return_all_outputs: bool,
) -> int:
    return int(
        conn.execute(
            "INSERT INTO workflow_executions (workspace_id, workflow_id, version_id, status, "
            "input_variables, metadata, return_all_outputs, started_at) "
            "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?) RETURNING id",
            (
                workspace,
                version.workflow_id,
                version.version_id,
                _json(input_variables),
                _json(metadata),
                int(return_all_outputs),
                time.time(),
            ),
        ).fetchone()[0]
    )


def finish_execution(
    conn: sqlite3.Connection,
    workspace: int,
    execution_id: int,
    *,
    status: str,
    nodes: Sequence[NodeRow],
    error_message: str | None = None,
) -> None:
    updated = conn.execute(
        "UPDATE workflow_executions SET status = ?, error_message = ?, finished_at = ? "
        "WHERE id = ? AND workspace_id = ?",
        (status, error_message, time.time(), execution_id, workspace),
    ).rowcount
    if not updated:
        raise NotFoundError(f"workflow execution {execution_id} not found in this workspace")
    conn.executemany(
        "INSERT OR REPLACE INTO workflow_node_results (execution_id, position, node_name, "
        "node_type, status, value, error_message, raw_error_message, is_output_node, "
        "started_at, finished_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                execution_id, position, n.name, n.type, n.status, n.value, n.error_message,
                n.raw_error_message, int(n.is_output_node), n.started_at, n.finished_at,
                n.request_id,
            )
            for position, n in enumerate(nodes)
        ],
    )  # fmt: skip


_EXECUTION_COLUMNS = (
    "e.id, e.workflow_id, w.name, v.number, e.status, e.input_variables, e.metadata, "
    "e.return_all_outputs, e.error_message, e.started_at, e.finished_at"
)


def _execution(row: Sequence[Any]) -> dict[str, Any]:
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
        "duration_ms": None if finished_at is None else round((finished_at - started_at) * 1000, 3),
    }


def list_executions(
    conn: sqlite3.Connection,
    workspace: int,
    *,
    workflow: int | str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, without node results."""
    where = "e.workspace_id = ?"
    args: tuple[Any, ...] = (workspace,)
    if workflow is not None:
        where += " AND e.workflow_id = ?"
        args += (_find(conn, workspace, workflow)[0],)
    if status is not None:
        where += " AND e.status = ?"
        args += (status,)
    joins = (
        "FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id "
        "JOIN workflow_versions v ON v.id = e.version_id"
    )
    total = conn.execute(f"SELECT COUNT(*) {joins} WHERE {where}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT {_EXECUTION_COLUMNS} {joins} WHERE {where} ORDER BY e.id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ).fetchall()
    return [_execution(row) for row in rows], total


def get_execution(conn: sqlite3.Connection, workspace: int, execution_id: int) -> dict[str, Any]:
    """One execution with its node results (in definition order) under ``"nodes"``."""
    row = conn.execute(
        f"SELECT {_EXECUTION_COLUMNS} FROM workflow_executions e "
        "JOIN workflows w ON w.id = e.workflow_id JOIN workflow_versions v ON v.id = e.version_id "
        "WHERE e.id = ? AND e.workspace_id = ?",
        (execution_id, workspace),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"workflow execution {execution_id} not found in this workspace")
    execution = _execution(row)
    nodes = conn.execute(
        "SELECT node_name, node_type, status, value, error_message, raw_error_message, "
        "is_output_node, started_at, finished_at, request_id FROM workflow_node_results "
        "WHERE execution_id = ? ORDER BY position",
        (execution_id,),
    ).fetchall()
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


class WorkflowStore(Protocol):
    """What the workflow routes and runner need from a store, every call workspace-scoped."""

    async def publish_workflow(
        self, workspace: int, new: NewWorkflowVersion
    ) -> WorkflowVersion: ...

    async def get_workflow(
        self,
        workspace: int,
        ref: int | str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> WorkflowVersion: ...

    async def list_workflows(
        self, workspace: int, *, page: int, per_page: int
    ) -> tuple[list[WorkflowVersion], int]: ...

    async def create_workflow_execution(
        self,
        workspace: int,
        version: WorkflowVersion,
        *,
        input_variables: dict[str, Any],
        metadata: dict[str, Any],
        return_all_outputs: bool,
    ) -> int: ...

    async def finish_workflow_execution(
        self,
        workspace: int,
        execution_id: int,
        *,
        status: str,
        nodes: Sequence[NodeRow],
        error_message: str | None = None,
    ) -> None: ...

    async def list_workflow_executions(
        self,
        workspace: int,
        *,
        workflow: int | str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def get_workflow_execution(self, workspace: int, execution_id: int) -> dict[str, Any]: ...


class SQLiteWorkflows:
    """:class:`WorkflowStore` on the SQLite store's writer thread and readers."""

    def __init__(self, readers: ReadPool, writer: WriterThread) -> None:
        self._readers = readers
        self._writer = writer

    async def publish_workflow(self, workspace: int, new: NewWorkflowVersion) -> WorkflowVersion:
        return await self._writer.submit(partial(publish_workflow, workspace=workspace, new=new))

    async def get_workflow(
        self,
        workspace: int,
        ref: int | str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> WorkflowVersion:
        return await self._readers.run(
            partial(select_workflow, workspace=workspace, ref=ref, version=version, label=label)
        )

    async def list_workflows(
        self, workspace: int, *, page: int, per_page: int
    ) -> tuple[list[WorkflowVersion], int]:
        return await self._readers.run(
            partial(list_workflows, workspace=workspace, page=page, per_page=per_page)
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
        return await self._writer.submit(
            partial(
                create_execution,
                workspace=workspace,
                version=version,
                input_variables=input_variables,
                metadata=metadata,
                return_all_outputs=return_all_outputs,
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
        await self._writer.submit(
            partial(
                finish_execution,
                workspace=workspace,
                execution_id=execution_id,
                status=status,
                nodes=nodes,
                error_message=error_message,
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
        return await self._readers.run(
            partial(
                list_executions,
                workspace=workspace,
                workflow=workflow,
                status=status,
                limit=limit,
                offset=offset,
            )
        )

    async def get_workflow_execution(self, workspace: int, execution_id: int) -> dict[str, Any]:
        return await self._readers.run(
            partial(get_execution, workspace=workspace, execution_id=execution_id)
        )
