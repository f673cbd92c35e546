"""Request-log SQL: store requests, apply ``track.*`` calls, ingest batches, read back.

Functions of a connection. The write functions run on the writer thread inside a
transaction, so a lookup followed by an insert cannot race another write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from promptrun.server.store._templates import select_version
from promptrun.server.store.base import NotFoundError, Rejected, RequestRow, TrackCall
from promptrun.wire.ingest import IngestResult

__all__ = [
    "apply_track_call",
    "create_group",
    "get_request",
    "ingest",
    "insert_request",
    "list_requests",
    "stored_ids",
]

_decode = msgspec.json.decode
DEFAULT_SCORE_NAME = "default"


def _stored_json(raw: Any) -> Any:
    """A JSON column's value; what is not JSON (a row written around the server) comes back
    as it is stored, so one odd row never fails a whole read."""
    try:
        return _decode(raw)
    except (msgspec.DecodeError, RecursionError, TypeError):
        return raw


# RequestRow's fields, named as the columns they fill.
_ROW_COLUMNS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_id", "prompt_version", "prompt_name", "input_variables", "tags", "metadata",
    "group_id", "start_time", "end_time", "input_tokens", "output_tokens", "price", "status",
    "error_type", "error_message", "score", "body", "blueprint",
)  # fmt: skip
_INSERT = (
    f"INSERT INTO requests (workspace_id, {', '.join(_ROW_COLUMNS)}, created_at) "
    f"VALUES ({', '.join('?' * (len(_ROW_COLUMNS) + 2))}) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


def _check_group(conn: sqlite3.Connection, workspace: int, group_id: int) -> None:
    found = conn.execute(
        "SELECT 1 FROM groups WHERE id = ? AND workspace_id = ?", (group_id, workspace)
    ).fetchone()
    if found is None:
        raise NotFoundError(
            f"group {group_id} not found in this workspace; create one with POST /create-group"
        )


def _link_prompt(conn: sqlite3.Connection, workspace: int, row: RequestRow) -> None:
    """Fill the template's name from its id, or its id from its name, within the workspace."""
    if row.prompt_id is not None:
        found = conn.execute(
            "SELECT name FROM prompt_templates WHERE id = ? AND workspace_id = ?",
            (row.prompt_id, workspace),
        ).fetchone()
        if found is None:  # another workspace's id tells this one nothing
            row.prompt_id = None
        elif row.prompt_name is None:
            row.prompt_name = found[0]
    elif row.prompt_name is not None:
        found = conn.execute(
            "SELECT id FROM prompt_templates WHERE workspace_id = ? AND name = ?",
            (workspace, row.prompt_name),
        ).fetchone()
        if found is not None:
            row.prompt_id = found[0]


def _insert(conn: sqlite3.Connection, workspace: int, row: RequestRow) -> int | None:
    """The new request's id, or None when its client id is already stored."""
    if row.group_id is not None:
        _check_group(conn, workspace, row.group_id)
    _link_prompt(conn, workspace, row)
    now = time.time()
    params = (workspace, *(getattr(row, column) for column in _ROW_COLUMNS), now)
    found = conn.execute(_INSERT, params).fetchone()
    if found is None:
        return None
    request_id: int = found[0]
    if row.group_id is not None:
        conn.execute(
            "INSERT INTO request_groups (request_id, group_id) VALUES (?, ?)",
            (request_id, row.group_id),
        )
    if row.score is not None and (row.score or row.score_name):
        conn.execute(
            "INSERT INTO request_scores (request_id, name, score, created_at) VALUES (?, ?, ?, ?)",
            (request_id, row.score_name or DEFAULT_SCORE_NAME, row.score, now),
        )
    return request_id


def insert_request(conn: sqlite3.Connection, workspace: int, row: RequestRow) -> int:
    """Store one request; a client id already stored answers with the first id."""
    request_id = _insert(conn, workspace, row)
    if request_id is None:
        request_id = _by_client_id(conn, workspace, row.client_request_id)
    assert request_id is not None
    return request_id


def _by_client_id(conn: sqlite3.Connection, workspace: int, client_id: str | None) -> int | None:
    found = conn.execute(
        "SELECT id FROM requests WHERE workspace_id = ? AND client_request_id = ?",
        (workspace, client_id),
    ).fetchone()
    return None if found is None else int(found[0])


def resolve_ref(conn: sqlite3.Connection, workspace: int, ref: int | str) -> int:
    """A server id or a client id, as the server id within the workspace."""
    if isinstance(ref, int):
        found = conn.execute(
            "SELECT id FROM requests WHERE id = ? AND workspace_id = ?", (ref, workspace)
        ).fetchone()
        request_id = None if found is None else int(found[0])
    else:
        request_id = _by_client_id(conn, workspace, ref)
    if request_id is None:
        raise NotFoundError(f"request {ref!r} not found in this workspace")
    return request_id


def apply_track_call(conn: sqlite3.Connection, workspace: int, call: TrackCall) -> int:
    """Apply ``track.metadata|score|prompt|group``; returns the request's server id."""
    request_id = resolve_ref(conn, workspace, call.request_ref)
    values = call.values
    if call.endpoint == "metadata":
        conn.executemany(
            "INSERT INTO request_metadata (request_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (request_id, key) DO UPDATE SET value = excluded.value",
            [(request_id, key, value) for key, value in values.items()],
        )
    elif call.endpoint == "score":
        name = values.get("name") or DEFAULT_SCORE_NAME
        conn.execute(
            "INSERT INTO request_scores (request_id, name, score, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (request_id, name) DO UPDATE SET score = excluded.score",
            (request_id, name, values["score"], time.time()),
        )
        if name == DEFAULT_SCORE_NAME:
            conn.execute(
                "UPDATE requests SET score = ? WHERE id = ?", (values["score"], request_id)
            )
    elif call.endpoint == "prompt":
        version = select_version(
            conn,
            workspace,
            values["prompt_name"],
            version=values.get("version"),
            label=values.get("label"),
        )
        variables = values.get("prompt_input_variables")
        conn.execute(
            "UPDATE requests SET prompt_id = ?, prompt_version = ?, prompt_name = ?, "
            "input_variables = COALESCE(?, input_variables) WHERE id = ?",
            (
                version.template_id,
                version.number,
                version.prompt_name,
                None if variables is None else msgspec.json.encode(variables).decode(),
                request_id,
            ),
        )
    else:
        group_id = values["group_id"]
        _check_group(conn, workspace, group_id)
        conn.execute(
            "INSERT OR IGNORE INTO request_groups (request_id, group_id) VALUES (?, ?)",
            (request_id, group_id),
        )
    if call.client_call_id is not None:
        conn.execute(
            "INSERT INTO track_calls (workspace_id, client_call_id, request_id) VALUES (?, ?, ?)",
            (workspace, call.client_call_id, request_id),
        )
    return request_id


def create_group(conn: sqlite3.Connection, workspace: int) -> int:
    found = conn.execute(
        "INSERT INTO groups (workspace_id, created_at) VALUES (?, ?) RETURNING id",
        (workspace, time.time()),
    ).fetchone()
    return int(found[0])


def _ingest_one(
    conn: sqlite3.Connection, workspace: int, item: RequestRow | TrackCall
) -> IngestResult:
    if isinstance(item, RequestRow):
        client_id = item.client_request_id or ""
        request_id = _insert(conn, workspace, item)
        if request_id is None:
            first = _by_client_id(conn, workspace, client_id)
            return IngestResult(client_request_id=client_id, status="duplicate", request_id=first)
        return IngestResult(client_request_id=client_id, status="stored", request_id=request_id)
    client_id = item.client_call_id or ""
    found = conn.execute(
        "SELECT request_id FROM track_calls WHERE workspace_id = ? AND client_call_id = ?",
        (workspace, client_id),
    ).fetchone()
    if found is not None:
        return IngestResult(client_request_id=client_id, status="duplicate", request_id=found[0])
    request_id = apply_track_call(conn, workspace, item)
    return IngestResult(client_request_id=client_id, status="stored", request_id=request_id)


def ingest(
    conn: sqlite3.Connection, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected]
) -> list[IngestResult]:
    """Store a batch in order; a record that fails is rejected alone (its savepoint undone)."""
    results: list[IngestResult] = []
    for item in items:
        if isinstance(item, Rejected):
            results.append(
                IngestResult(
                    client_request_id=item.client_request_id, status="rejected", error=item.error
                )
            )
            continue
        conn.execute("SAVEPOINT record")
        try:
            results.append(_ingest_one(conn, workspace, item))
        except NotFoundError as exc:
            conn.execute("ROLLBACK TO record")
            client_id = (
                item.client_request_id if isinstance(item, RequestRow) else item.client_call_id
            )
            results.append(
                IngestResult(
                    client_request_id=client_id or "", status="rejected", error=exc.message
                )
            )
        conn.execute("RELEASE record")
    return results


def stored_ids(
    conn: sqlite3.Connection, workspace: int, client_ids: Sequence[str]
) -> dict[str, int]:
    """Which of these client ids (records or track calls) the workspace has, with server ids."""
    stored: dict[str, int] = {}
    for start in range(0, len(client_ids), 500):
        chunk = list(client_ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        for client_id, request_id in conn.execute(
            f"SELECT client_call_id, request_id FROM track_calls "
            f"WHERE workspace_id = ? AND client_call_id IN ({marks})",
            (workspace, *chunk),
        ):
            stored[client_id] = request_id
        for client_id, request_id in conn.execute(
            f"SELECT client_request_id, id FROM requests "
            f"WHERE workspace_id = ? AND client_request_id IN ({marks})",
            (workspace, *chunk),
        ):
            stored[client_id] = request_id
    return stored


_SUMMARY_COLUMNS = (
    "id, client_request_id, kind, provider, model, function_name, api_type, prompt_id, "
    "prompt_version, prompt_name, input_variables, tags, metadata, group_id, start_time, "
    "end_time, input_tokens, output_tokens, price, status, error_type, error_message, score, "
    "created_at"
)
_JSON_COLUMNS = frozenset({"input_variables", "tags", "metadata"})
_RENAMED = {"start_time": "request_start_time", "end_time": "request_end_time"}


def _summary(row: sqlite3.Row | tuple[Any, ...], names: Sequence[str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for name, value in zip(names, row, strict=True):
        if name in _JSON_COLUMNS and value is not None:
            value = _stored_json(value)
        item[_RENAMED.get(name, name)] = value
    return item


def list_requests(
    conn: sqlite3.Connection, workspace: int, *, limit: int, offset: int, prompt_name: str | None
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; each a summary (no body or blueprint)."""
    where = "workspace_id = ?"
    args: tuple[Any, ...] = (workspace,)
    if prompt_name is not None:
        where += " AND prompt_name = ?"
        args += (prompt_name,)
    total = conn.execute(f"SELECT COUNT(*) FROM requests WHERE {where}", args).fetchone()[0]
    cursor = conn.execute(
        f"SELECT {_SUMMARY_COLUMNS} FROM requests WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    names = [d[0] for d in cursor.description]
    return [_summary(row, names) for row in cursor], total


def get_request(conn: sqlite3.Connection, workspace: int, ref: int | str) -> dict[str, Any]:
    """Everything stored about one request: body, blueprint, scores, metadata, groups."""
    request_id = resolve_ref(conn, workspace, ref)
    cursor = conn.execute(
        f"SELECT {_SUMMARY_COLUMNS}, body, blueprint FROM requests WHERE id = ?", (request_id,)
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    item = _summary(row[:-2], names[:-2])
    item["body"] = _stored_json(row[-2])
    item["prompt_blueprint"] = _stored_json(row[-1])
    tracked = conn.execute(
        "SELECT key, value FROM request_metadata WHERE request_id = ?", (request_id,)
    ).fetchall()
    stored = item["metadata"]
    if not isinstance(stored, dict):  # a row written around the server: keep it in view
        stored = {"(stored metadata)": stored} if stored not in (None, "") else {}
    item["metadata"] = {**stored, **dict(tracked)}
    item["scores"] = dict(
        conn.execute(
            "SELECT name, score FROM request_scores WHERE request_id = ? ORDER BY name",
            (request_id,),
        ).fetchall()
    )
    item["groups"] = [
        r[0]
        for r in conn.execute(
            "SELECT group_id FROM request_groups WHERE request_id = ? ORDER BY group_id",
            (request_id,),
        )
    ]
    return item
