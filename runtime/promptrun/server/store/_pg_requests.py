"""Request-log SQL for PostgreSQL: store requests, apply ``track.*`` calls, ingest, read back.

The semantics of :mod:`promptrun.server.store._requests`, built for several server processes
on one database. A run of consecutive records in a batch is stored with one multi-row
``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` (and one more for the
new rows' bodies and blueprints): ids are drawn from the sequence first (so they follow the
batch's order), and the unique (workspace, client id) constraint decides what is new. A record whose client id another process is storing at that
moment waits for that transaction and then reads as a duplicate, so retries through any
process store a record once. Rows are inserted in client-id order, so two batches that share
ids lock them in the same order and cannot deadlock on each other.

PostgreSQL text cannot hold NUL characters: a record with one in a text field is rejected
(a single call answers 400) rather than stored altered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from promptrun.server.store._pg_db import Conn
from promptrun.server.store._pg_templates import select_version
from promptrun.server.store._requests import (
    _SUMMARY_COLUMNS,
    DEFAULT_SCORE_NAME,
    _summary,
)
from promptrun.server.store.base import NotFoundError, Rejected, RequestRow, TrackCall
from promptrun.wire.ingest import IngestResult

__all__ = [
    "Facet",
    "apply_track_call",
    "check_text",
    "create_group",
    "get_request",
    "ingest",
    "insert_request",
    "list_requests",
    "stored_ids",
]

_decode = msgspec.json.decode
Facet = tuple[int, str, str]  # (workspace, kind, value) for the dashboard's filter menus

_NUL_MESSAGE = "text may not contain NUL (\\u0000) characters; PostgreSQL cannot store them"
_TEXT_FIELDS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_name", "status", "error_type", "error_message", "score_name",
)  # fmt: skip
_PG_TYPES = {
    "client_request_id": "text", "kind": "text", "provider": "text", "model": "text",
    "function_name": "text", "api_type": "text", "prompt_id": "int8", "prompt_version": "int8",
    "prompt_name": "text", "input_variables": "text", "tags": "text", "metadata": "text",
    "group_id": "int8", "start_time": "float8", "end_time": "float8", "input_tokens": "int8",
    "output_tokens": "int8", "price": "float8", "status": "text", "error_type": "text",
    "error_message": "text", "score": "int8", "body": "text", "blueprint": "text",
}  # fmt: skip
# RequestRow's fields kept in the log table; body and blueprint go to request_payloads.
_LOG_COLUMNS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_id", "prompt_version", "prompt_name", "input_variables", "tags", "metadata",
    "group_id", "start_time", "end_time", "input_tokens", "output_tokens", "price", "status",
    "error_type", "error_message", "score",
)  # fmt: skip
_SELECTED = ", ".join(f"u.{c}::jsonb" if c == "tags" else f"u.{c}" for c in _LOG_COLUMNS)
_BULK_INSERT = (
    f"INSERT INTO requests (id, workspace_id, search_text, {', '.join(_LOG_COLUMNS)}, "
    f"created_at) SELECT u.id, $1, u.search_text, {_SELECTED}, $2 FROM unnest($3::int8[], "
    "$4::text[], "
    + ", ".join(f"${i + 5}::{_PG_TYPES[c]}[]" for i, c in enumerate(_LOG_COLUMNS))
    + f") AS u(id, search_text, {', '.join(_LOG_COLUMNS)}) "
    "ON CONFLICT ON CONSTRAINT requests_client_id DO NOTHING RETURNING id"
)
_PAYLOAD_INSERT = (
    "INSERT INTO request_payloads (request_id, body, blueprint) "
    "SELECT * FROM unnest($1::int8[], $2::text[], $3::text[])"
)
SEARCH_TEXT_LIMIT = 16_384
_TEXT_KEYS = frozenset({"text", "content"})


def search_text(blueprint: str) -> str:
    """The conversation's words, for the dashboard's text search: every string under a
    ``text`` or ``content`` key of the blueprint, one per line, at most ``SEARCH_TEXT_LIMIT``
    characters (indexing whole blueprints, JSON and all, costs ingestion about half its speed).
    """
    found: list[str] = []
    size = 0
    stack: list[Any] = [_decode(blueprint)]
    while stack and size < SEARCH_TEXT_LIMIT:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in reversed(node.items()):
                if key in _TEXT_KEYS and isinstance(value, str):
                    found.append(value)
                    size += len(value) + 1
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return "\n".join(found)[:SEARCH_TEXT_LIMIT].replace("\x00", " ")


class UnstorableText(msgspec.ValidationError):
    """A value PostgreSQL cannot store as text (it holds a NUL character).

    A validation error of the request's body, so the server answers it 400 like any other.
    """


def check_text(*values: str | None) -> None:
    """Raise :class:`UnstorableText` when any of the values holds a NUL character."""
    for value in values:
        if value and "\x00" in value:
            raise UnstorableText(_NUL_MESSAGE)


def _tags_of(row: RequestRow) -> list[Any]:
    tags = _decode(row.tags)
    return tags if isinstance(tags, list) else []


def _row_problem(row: RequestRow) -> str | None:
    for name in _TEXT_FIELDS:
        value = getattr(row, name)
        if value and "\x00" in value:
            return _NUL_MESSAGE
    # JSONB refuses \u0000 even escaped; the other JSON columns are text and keep the escape.
    if "\\u0000" in row.tags and any("\x00" in str(tag) for tag in _tags_of(row)):
        return _NUL_MESSAGE
    return None


def row_facets(workspace: int, row: RequestRow) -> Iterable[Facet]:
    for kind, value in (
        ("prompts", row.prompt_name),
        ("providers", row.provider),
        ("models", row.model),
        ("statuses", row.status),
    ):
        if value:
            yield (workspace, kind, value)
    for tag in _tags_of(row):
        yield (
            workspace,
            "tags",
            tag if isinstance(tag, str) else msgspec.json.encode(tag).decode(),
        )


async def save_facets(conn: Conn, facets: set[Facet]) -> None:
    """Record filter-menu values; sorted, so concurrent writers lock them in one order."""
    if facets:
        ordered = sorted(facets)
        await conn.execute(
            "INSERT INTO request_facets (workspace_id, kind, value) "
            "SELECT * FROM unnest($1::int8[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
            [f[0] for f in ordered],
            [f[1] for f in ordered],
            [f[2] for f in ordered],
        )


async def _link_prompts(conn: Conn, workspace: int, rows: Sequence[RequestRow]) -> None:
    """Fill each template's name from its id, or its id from its name, within the workspace."""
    ids = {r.prompt_id for r in rows if r.prompt_id is not None}
    names = {r.prompt_name for r in rows if r.prompt_id is None and r.prompt_name is not None}
    if not ids and not names:
        return
    found = await conn.fetch(
        "SELECT id, name FROM prompt_templates WHERE workspace_id = $1 "
        "AND (id = ANY($2::int8[]) OR name = ANY($3::text[]))",
        workspace,
        list(ids),
        list(names),
    )
    by_id = {r[0]: r[1] for r in found}
    by_name = {r[1]: r[0] for r in found}
    for row in rows:
        if row.prompt_id is not None:
            name = by_id.get(row.prompt_id)
            if name is None:  # another workspace's id tells this one nothing
                row.prompt_id = None
            elif row.prompt_name is None:
                row.prompt_name = name
        elif row.prompt_name is not None:
            row.prompt_id = by_name.get(row.prompt_name)


def _group_missing(group_id: int) -> str:
    return f"group {group_id} not found in this workspace; create one with POST /create-group"


async def store_rows(
    conn: Conn, workspace: int, rows: Sequence[RequestRow], now: float, facets: set[Facet]
) -> list[IngestResult]:
    """Store a run of records in a few statements; one result per record, in order."""
    results: list[IngestResult | None] = [None] * len(rows)
    groups = {r.group_id for r in rows if r.group_id is not None}
    known_groups: set[int] = set()
    if groups:
        found = await conn.fetch(
            "SELECT id FROM groups WHERE workspace_id = $1 AND id = ANY($2::int8[])",
            workspace,
            list(groups),
        )
        known_groups = {r[0] for r in found}
    first_of: dict[str, int] = {}  # client id -> position of its first record in this run
    to_insert: list[int] = []
    for position, row in enumerate(rows):
        client_id = row.client_request_id or ""
        problem = _row_problem(row)
        if problem is None and row.group_id is not None and row.group_id not in known_groups:
            problem = _group_missing(row.group_id)
        if problem is not None:
            results[position] = IngestResult(
                client_request_id=client_id, status="rejected", error=problem
            )
        elif row.client_request_id is not None and row.client_request_id in first_of:
            continue  # a repeat within the run: answered from the first one below
        else:
            if row.client_request_id is not None:
                first_of[row.client_request_id] = position
            to_insert.append(position)
    inserted: dict[int, int] = {}  # position -> new id
    if to_insert:
        chosen = [rows[p] for p in to_insert]
        await _link_prompts(conn, workspace, chosen)
        ids = await conn.fetchval(
            "SELECT array_agg(nextval('requests_id_seq')) FROM generate_series(1, $1)",
            len(to_insert),
        )
        id_of = dict(zip(to_insert, sorted(ids), strict=True))
        # Lock unique keys in one order across processes; NULL client ids never conflict.
        order = sorted(to_insert, key=lambda p: rows[p].client_request_id or "")
        columns = [[getattr(rows[p], c) for p in order] for c in _LOG_COLUMNS]
        texts = [search_text(rows[p].blueprint) for p in order]
        returned = await conn.fetch(
            _BULK_INSERT, workspace, now, [id_of[p] for p in order], texts, *columns
        )
        new_ids = {r[0] for r in returned}
        inserted = {p: id_of[p] for p in to_insert if id_of[p] in new_ids}
        if inserted:
            await conn.execute(
                _PAYLOAD_INSERT,
                list(inserted.values()),
                [rows[p].body for p in inserted],
                [rows[p].blueprint for p in inserted],
            )
        await _children(conn, [(rows[p], inserted[p]) for p in to_insert if p in inserted], now)
        for p in inserted:
            facets.update(row_facets(workspace, rows[p]))
    conflicted = sorted({rows[p].client_request_id or "" for p in to_insert if p not in inserted})
    existing = await stored_request_ids(conn, workspace, conflicted) if conflicted else {}
    for position, row in enumerate(rows):
        if results[position] is not None:
            continue
        client_id = row.client_request_id or ""
        first = first_of.get(client_id, position)
        if first == position and position in inserted:
            results[position] = IngestResult(
                client_request_id=client_id, status="stored", request_id=inserted[position]
            )
        else:
            results[position] = IngestResult(
                client_request_id=client_id,
                status="duplicate",
                request_id=inserted.get(first, existing.get(client_id)),
            )
    return [r for r in results if r is not None]


async def _children(conn: Conn, stored: Sequence[tuple[RequestRow, int]], now: float) -> None:
    """Group memberships and initial scores of newly stored records."""
    grouped = [(i, r.group_id) for r, i in stored if r.group_id is not None]
    if grouped:
        await conn.execute(
            "INSERT INTO request_groups (request_id, group_id) "
            "SELECT * FROM unnest($1::int8[], $2::int8[])",
            [g[0] for g in grouped],
            [g[1] for g in grouped],
        )
    scored = [
        (i, r.score_name or DEFAULT_SCORE_NAME, r.score)
        for r, i in stored
        if r.score is not None and (r.score or r.score_name)
    ]
    if scored:
        await conn.execute(
            "INSERT INTO request_scores (request_id, name, score, created_at) "
            "SELECT u.*, $4 FROM unnest($1::int8[], $2::text[], $3::int8[]) AS u",
            [s[0] for s in scored],
            [s[1] for s in scored],
            [s[2] for s in scored],
            now,
        )


async def stored_request_ids(
    conn: Conn, workspace: int, client_ids: Sequence[str]
) -> dict[str, int]:
    found = await conn.fetch(
        "SELECT client_request_id, id FROM requests "
        "WHERE workspace_id = $1 AND client_request_id = ANY($2::text[])",
        workspace,
        list(client_ids),
    )
    return {r[0]: r[1] for r in found}


async def insert_request(
    conn: Conn, workspace: int, row: RequestRow, now: float, facets: set[Facet]
) -> int:
    """Store one request; a client id already stored answers with the first id."""
    (result,) = await store_rows(conn, workspace, [row], now, facets)
    if result.status == "rejected":
        message = result.error or ""
        if message == _NUL_MESSAGE:
            raise UnstorableText(message)
        raise NotFoundError(message)
    assert result.request_id is not None
    return result.request_id


async def resolve_ref(conn: Conn, workspace: int, ref: int | str) -> int:
    """A server id or a client id, as the server id within the workspace."""
    if isinstance(ref, int):
        request_id = await conn.fetchval(
            "SELECT id FROM requests WHERE id = $1 AND workspace_id = $2", ref, workspace
        )
    elif "\x00" in ref:
        request_id = None
    else:
        request_id = await conn.fetchval(
            "SELECT id FROM requests WHERE workspace_id = $1 AND client_request_id = $2",
            workspace,
            ref,
        )
    if request_id is None:
        raise NotFoundError(f"request {ref!r} not found in this workspace")
    return int(request_id)


async def _check_group(conn: Conn, workspace: int, group_id: int) -> None:
    found = await conn.fetchval(
        "SELECT 1 FROM groups WHERE id = $1 AND workspace_id = $2", group_id, workspace
    )
    if found is None:
        raise NotFoundError(_group_missing(group_id))


class AlreadyApplied(Exception):
    """Another transaction recorded this track call's client id first."""

    def __init__(self, request_id: int) -> None:
        super().__init__(request_id)
        self.request_id = request_id


async def apply_track_call(
    conn: Conn, workspace: int, call: TrackCall, now: float, facets: set[Facet]
) -> int:
    """Apply ``track.metadata|score|prompt|group``; returns the request's server id."""
    values = call.values
    check_text(call.client_call_id)
    request_id = await resolve_ref(conn, workspace, call.request_ref)
    if call.client_call_id is not None:
        # Claimed first: of two processes applying one retried call, one applies it.
        claimed = await conn.fetchval(
            "INSERT INTO track_calls (workspace_id, client_call_id, request_id) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING request_id",
            workspace,
            call.client_call_id,
            request_id,
        )
        if claimed is None:
            raise AlreadyApplied(request_id)
    if call.endpoint == "metadata":
        items = sorted((str(k), str(v)) for k, v in values.items())
        check_text(*(text for item in items for text in item))
        await conn.execute(
            "INSERT INTO request_metadata (request_id, key, value) "
            "SELECT $1, * FROM unnest($2::text[], $3::text[]) "
            "ON CONFLICT (request_id, key) DO UPDATE SET value = excluded.value",
            request_id,
            [k for k, _ in items],
            [v for _, v in items],
        )
    elif call.endpoint == "score":
        name = values.get("name") or DEFAULT_SCORE_NAME
        check_text(name)
        await conn.execute(
            "INSERT INTO request_scores (request_id, name, score, created_at) "
            "VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (request_id, name) DO UPDATE SET score = excluded.score",
            request_id,
            name,
            values["score"],
            now,
        )
        if name == DEFAULT_SCORE_NAME:
            await conn.execute(
                "UPDATE requests SET score = $1 WHERE id = $2", values["score"], request_id
            )
    elif call.endpoint == "prompt":
        check_text(values["prompt_name"], values.get("label"))
        version = await select_version(
            conn,
            workspace,
            values["prompt_name"],
            version=values.get("version"),
            label=values.get("label"),
        )
        variables = values.get("prompt_input_variables")
        await conn.execute(
            "UPDATE requests SET prompt_id = $1, prompt_version = $2, prompt_name = $3, "
            "input_variables = COALESCE($4, input_variables) WHERE id = $5",
            version.template_id,
            version.number,
            version.prompt_name,
            None if variables is None else msgspec.json.encode(variables).decode(),
            request_id,
        )
        facets.add((workspace, "prompts", version.prompt_name))
    else:
        group_id = values["group_id"]
        await _check_group(conn, workspace, group_id)
        await conn.execute(
            "INSERT INTO request_groups (request_id, group_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            request_id,
            group_id,
        )
    return request_id


async def create_group(conn: Conn, workspace: int, now: float) -> int:
    group_id = await conn.fetchval(
        "INSERT INTO groups (workspace_id, created_at) VALUES ($1, $2) RETURNING id",
        workspace,
        now,
    )
    return int(group_id)


async def _track_in_batch(
    conn: Conn, workspace: int, call: TrackCall, now: float, facets: set[Facet]
) -> IngestResult:
    client_id = call.client_call_id or ""
    found = None
    if "\x00" not in client_id:
        found = await conn.fetchval(
            "SELECT request_id FROM track_calls WHERE workspace_id = $1 AND client_call_id = $2",
            workspace,
            client_id,
        )
    if found is not None:
        return IngestResult(client_request_id=client_id, status="duplicate", request_id=found)
    applied: set[Facet] = set()
    try:
        async with conn.transaction():  # a savepoint: a failing call undoes only itself
            request_id = await apply_track_call(conn, workspace, call, now, applied)
    except AlreadyApplied as exc:
        return IngestResult(
            client_request_id=client_id, status="duplicate", request_id=exc.request_id
        )
    except (NotFoundError, UnstorableText) as exc:
        return IngestResult(client_request_id=client_id, status="rejected", error=str(exc))
    facets.update(applied)
    return IngestResult(client_request_id=client_id, status="stored", request_id=request_id)


async def ingest(
    conn: Conn,
    workspace: int,
    items: Sequence[RequestRow | TrackCall | Rejected],
    now: float,
    facets: set[Facet],
) -> list[IngestResult]:
    """Store a batch in order: runs of records in bulk, track calls one by one."""
    results: list[IngestResult] = []
    run: list[RequestRow] = []
    for item in [*items, None]:
        if isinstance(item, RequestRow):
            run.append(item)
            continue
        if run:
            results += await store_rows(conn, workspace, run, now, facets)
            run = []
        if isinstance(item, Rejected):
            results.append(
                IngestResult(
                    client_request_id=item.client_request_id, status="rejected", error=item.error
                )
            )
        elif isinstance(item, TrackCall):
            results.append(await _track_in_batch(conn, workspace, item, now, facets))
    return results


async def stored_ids(conn: Conn, workspace: int, client_ids: Sequence[str]) -> dict[str, int]:
    """Which of these client ids (records or track calls) the workspace has, with server ids."""
    wanted = sorted({c for c in client_ids if "\x00" not in c})
    stored: dict[str, int] = {}
    for r in await conn.fetch(
        "SELECT client_call_id, request_id FROM track_calls "
        "WHERE workspace_id = $1 AND client_call_id = ANY($2::text[])",
        workspace,
        wanted,
    ):
        stored[r[0]] = r[1]
    stored.update(await stored_request_ids(conn, workspace, wanted))
    return stored


def summaries(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Records selected with ``_SUMMARY_COLUMNS`` as the API's request summaries."""
    if not records:
        return []
    names = list(records[0].keys())
    return [_summary(tuple(r.values()), names) for r in records]


async def list_requests(
    conn: Conn, workspace: int, *, limit: int, offset: int, prompt_name: str | None
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; each a summary (no body or blueprint)."""
    where = "workspace_id = $1"
    args: tuple[Any, ...] = (workspace,)
    if prompt_name is not None:
        if "\x00" in prompt_name:
            return [], 0
        where += " AND prompt_name = $2"
        args += (prompt_name,)
    total = await conn.fetchval(f"SELECT COUNT(*) FROM requests WHERE {where}", *args)
    n = len(args)
    records = await conn.fetch(
        f"SELECT {_SUMMARY_COLUMNS} FROM requests WHERE {where} "
        f"ORDER BY id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return summaries(records), int(total)


async def get_request(conn: Conn, workspace: int, ref: int | str) -> dict[str, Any]:
    """Everything stored about one request: body, blueprint, scores, metadata, groups."""
    request_id = await resolve_ref(conn, workspace, ref)
    record = await conn.fetchrow(
        f"SELECT {_SUMMARY_COLUMNS}, p.body, p.blueprint FROM requests "
        "JOIN request_payloads p ON p.request_id = requests.id WHERE id = $1",
        request_id,
    )
    assert record is not None
    (item,) = summaries([record])
    body, blueprint = item.pop("body"), item.pop("blueprint")
    item["body"] = _decode(body)
    item["prompt_blueprint"] = _decode(blueprint)
    tracked = await conn.fetch(
        "SELECT key, value FROM request_metadata WHERE request_id = $1", request_id
    )
    item["metadata"] = {**(item["metadata"] or {}), **{r[0]: r[1] for r in tracked}}
    scores = await conn.fetch(
        'SELECT name, score FROM request_scores WHERE request_id = $1 ORDER BY name COLLATE "C"',
        request_id,
    )
    item["scores"] = {r[0]: r[1] for r in scores}
    groups = await conn.fetch(
        "SELECT group_id FROM request_groups WHERE request_id = $1 ORDER BY group_id", request_id
    )
    item["groups"] = [r[0] for r in groups]
    return item
