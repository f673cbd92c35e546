"""The request log: store requests, apply ``track.*`` calls, ingest batches, read back.

A batch (:func:`ingest`) is stored in order: each run of consecutive records with a few
statements (:func:`store_rows`: check their groups, link their templates, insert them all,
add them to the rollups, then their groups and scores), each track call on its own inside a
savepoint, so a call that fails is rejected alone. Idempotent by client id: a record whose client id is stored already,
or repeated within the batch, is answered ``duplicate`` with the first one's id; a track call
claims its client id before applying, so one retried through two server processes at once
applies once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptrun.server.store.base import (
    NotFoundError,
    Rejected,
    RequestRow,
    TrackCall,
    UnstorableText,
)
from promptrun.server.store.queries import metadata_rows
from promptrun.server.store.queries._sql import (
    Op,
    Row,
    execute,
    executemany,
    fetch,
    fetchrow,
    fetchval,
    savepoint,
)
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.rollups import derive, derive_facets, save_facets
from promptrun.server.store.queries.stored_json import bounded_body, bounded_object, stored_json
from promptrun.server.store.queries.templates import json_text, select_version
from promptrun.wire._metadata import MAX_METADATA_KEYS
from promptrun.wire.ingest import IngestResult

__all__ = [
    "SUMMARY_COLUMNS",
    "SUMMARY_NAMES",
    "apply_track_call",
    "create_group",
    "get_request",
    "in_int64",
    "ingest",
    "insert_request",
    "stored_ids",
    "summary",
    "track",
]

DEFAULT_SCORE_NAME = "default"


def in_int64(value: int) -> bool:
    """Whether an id from outside fits the databases' integers (a larger one matches nothing)."""
    return -(2**63) <= value < 2**63


def _group_missing(group_id: int) -> str:
    return f"group {group_id} not found in this workspace; create one with POST /create-group"


def _rejected(client_id: str, error: str) -> IngestResult:
    return IngestResult(client_request_id=client_id, status="rejected", error=error)


def _link_prompts(d: Dialect, workspace: int, rows: Sequence[RequestRow]) -> Op[None]:
    """Fill each template's name from its id, or its id from its name, within the workspace."""
    ids = {r.prompt_id for r in rows if r.prompt_id is not None and in_int64(r.prompt_id)}
    names = {
        r.prompt_name
        for r in rows
        if r.prompt_id is None and r.prompt_name is not None and d.text_ok(r.prompt_name)
    }
    if not ids and not names and all(r.prompt_id is None for r in rows):
        return
    found: list[Row] = []
    if ids or names:
        found = yield from fetch(
            "SELECT id, name FROM prompt_templates WHERE workspace_id = $1 "
            f"AND (id {d.any_of('$2', 'int8')} OR name {d.any_of('$3', 'text')})",
            workspace,
            d.array(ids),
            d.array(names),
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


def _known_groups(d: Dialect, workspace: int, group_ids: set[int]) -> Op[set[int]]:
    wanted = {g for g in group_ids if in_int64(g)}
    if not wanted:
        return set()
    found = yield from fetch(
        f"SELECT id FROM groups WHERE workspace_id = $1 AND id {d.any_of('$2', 'int8')}",
        workspace,
        d.array(wanted),
    )
    return {r[0] for r in found}


def _request_ids(d: Dialect, workspace: int, client_ids: Sequence[str]) -> Op[dict[str, int]]:
    found = yield from fetch(
        "SELECT client_request_id, id FROM requests "
        f"WHERE workspace_id = $1 AND client_request_id {d.any_of('$2', 'text')}",
        workspace,
        d.array(client_ids),
    )
    return {r[0]: r[1] for r in found}


def store_rows(
    d: Dialect, workspace: int, rows: Sequence[RequestRow], now: float
) -> Op[list[IngestResult]]:
    """Store a run of records in a few statements; one result per record, in order."""
    results: list[IngestResult | None] = [None] * len(rows)
    groups = {r.group_id for r in rows if r.group_id is not None}
    known_groups = (yield from _known_groups(d, workspace, groups)) if groups else set()
    first_of: dict[str, int] = {}  # client id -> position of its first record in this run
    to_insert: list[int] = []
    for position, row in enumerate(rows):
        problem = d.row_problem(row)
        if problem is None and row.group_id is not None and row.group_id not in known_groups:
            problem = _group_missing(row.group_id)
        if problem is not None:
            results[position] = _rejected(row.client_request_id or "", problem)
        elif row.client_request_id is not None and row.client_request_id in first_of:
            continue  # a repeat within the run: answered from the first one below
        else:
            if row.client_request_id is not None:
                first_of[row.client_request_id] = position
            to_insert.append(position)
    inserted: dict[int, int] = {}  # position -> new id
    if to_insert:
        yield from _link_prompts(d, workspace, [rows[p] for p in to_insert])
        new_ids = yield from d.insert_requests(workspace, now, [rows[p] for p in to_insert])
        inserted = {p: i for p, i in zip(to_insert, new_ids, strict=True) if i is not None}
        if inserted:
            if not d.defers:  # else the dialect's catch_up derives them after
                new = f"r.id {d.any_of('$1', 'int8')}"
                yield from derive(d, new, d.array(inserted.values()), facets=False)
            yield from save_facets(d, workspace, [rows[p] for p in inserted])
        if any(rows[p].group_id is not None or rows[p].score is not None for p in inserted):
            stored = [(rows[p], request_id) for p, request_id in inserted.items()]
            yield from _children(d, stored, now)
    conflicted = sorted({rows[p].client_request_id or "" for p in to_insert if p not in inserted})
    existing = (yield from _request_ids(d, workspace, conflicted)) if conflicted else {}
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


def _children(d: Dialect, stored: Sequence[tuple[RequestRow, int]], now: float) -> Op[None]:
    """Group memberships and initial scores of newly stored records."""
    yield from executemany(
        "INSERT INTO request_groups (request_id, group_id) VALUES ($1, $2)",
        [(request_id, r.group_id) for r, request_id in stored if r.group_id is not None],
    )
    yield from executemany(
        "INSERT INTO request_scores (request_id, name, score, created_at) VALUES ($1, $2, $3, $4)",
        [
            (request_id, r.score_name or DEFAULT_SCORE_NAME, r.score, now)
            for r, request_id in stored
            if r.score is not None and (r.score or r.score_name)
        ],
    )


def insert_request(d: Dialect, workspace: int, row: RequestRow, now: float) -> Op[int]:
    """Store one request; a client id already stored answers with the first id."""
    problem = d.row_problem(row)
    if problem is not None:
        raise UnstorableText(problem)
    (result,) = yield from store_rows(d, workspace, [row], now)
    if result.status == "rejected":
        raise NotFoundError(result.error or "")
    assert result.request_id is not None
    return result.request_id


def resolve_ref(d: Dialect, workspace: int, ref: int | str) -> Op[int]:
    """A server id or a client id, as the server id within the workspace."""
    request_id = None
    if isinstance(ref, int):
        if in_int64(ref):
            request_id = yield from fetchval(
                "SELECT id FROM requests WHERE id = $1 AND workspace_id = $2", ref, workspace
            )
    elif d.text_ok(ref):
        request_id = yield from fetchval(
            "SELECT id FROM requests WHERE workspace_id = $1 AND client_request_id = $2",
            workspace,
            ref,
        )
    if request_id is None:
        raise NotFoundError(f"request {ref!r} not found in this workspace")
    return int(request_id)


def apply_track_call(
    d: Dialect, workspace: int, call: TrackCall, now: float
) -> Op[tuple[int, bool]]:
    """Apply ``track.metadata|score|prompt|group``: the request's server id, and whether it
    was applied now (False: its client call id was applied before)."""
    values = call.values
    d.check_text(call.client_call_id)
    request_id = yield from resolve_ref(d, workspace, call.request_ref)
    if call.client_call_id is not None:
        # Claimed first: of two processes applying one retried call, one applies it.
        claimed = yield from fetchval(
            "INSERT INTO track_calls (workspace_id, client_call_id, request_id) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING request_id",
            workspace,
            call.client_call_id,
            request_id,
        )
        if claimed is None:
            return request_id, False
    if call.endpoint == "metadata":
        items = sorted((str(k), str(v)) for k, v in values.items())
        d.check_text(*(text for item in items for text in item))
        yield from metadata_rows.set_values(request_id, items)
    elif call.endpoint == "score":
        name = values.get("name") or DEFAULT_SCORE_NAME
        d.check_text(name)
        yield from execute(
            "INSERT INTO request_scores (request_id, name, score, created_at) "
            "VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (request_id, name) DO UPDATE SET score = excluded.score",
            request_id,
            name,
            values["score"],
            now,
        )
        if name == DEFAULT_SCORE_NAME:
            yield from _moving(
                d,
                request_id,
                execute(
                    "UPDATE requests SET score = $1 WHERE id = $2", values["score"], request_id
                ),
            )
    elif call.endpoint == "prompt":
        d.check_text(values["prompt_name"], values.get("label"))
        version = yield from select_version(
            d,
            workspace,
            values["prompt_name"],
            version=values.get("version"),
            label=values.get("label"),
        )
        variables = values.get("prompt_input_variables")
        update = execute(
            "UPDATE requests SET prompt_id = $1, prompt_version = $2, prompt_name = $3, "
            "input_variables = COALESCE($4, input_variables) WHERE id = $5",
            version.template_id,
            version.number,
            version.prompt_name,
            None if variables is None else json_text(variables),
            request_id,
        )
        yield from _moving(d, request_id, update, facets=True)
    else:
        group_id = values["group_id"]
        if group_id not in (yield from _known_groups(d, workspace, {group_id})):
            raise NotFoundError(_group_missing(group_id))
        yield from execute(
            "INSERT INTO request_groups (request_id, group_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            request_id,
            group_id,
        )
        # A request's group_id is its first group, however it got it (logged with one, or
        # tracked later); ``groups`` lists them all.
        yield from execute(
            "UPDATE requests SET group_id = $1 WHERE id = $2 AND group_id IS NULL",
            group_id,
            request_id,
        )
    return request_id, True


def _moving(d: Dialect, request_id: int, update: Op[None], *, facets: bool = False) -> Op[None]:
    """Run ``update`` on a stored request, moving it between rollup rows (and, with
    ``facets``, offering its new values in the filter menus). A request the rollups do not
    hold yet (see ``Dialect.defers``) gets there as it is once they catch up."""
    derived = f"r.id = $1 AND r.id <= {d.derived_upto}"
    yield from derive(d, derived, request_id, sign=-1, rows=False, facets=False)
    yield from update
    yield from metadata_rows.refresh(request_id)
    yield from derive(d, derived, request_id, rows=False, facets=False)
    if facets:
        yield from derive_facets(d, "r.id = $1", request_id)


def track(d: Dialect, workspace: int, call: TrackCall, now: float) -> Op[int]:
    """Apply a track call; returns the request's server id."""
    request_id, _ = yield from apply_track_call(d, workspace, call, now)
    return request_id


def create_group(d: Dialect, workspace: int, now: float) -> Op[int]:
    group_id = yield from fetchval(
        "INSERT INTO groups (workspace_id, created_at) VALUES ($1, $2) RETURNING id",
        workspace,
        now,
    )
    return int(group_id)


def _track_in_batch(d: Dialect, workspace: int, call: TrackCall, now: float) -> Op[IngestResult]:
    client_id = call.client_call_id or ""
    found = None
    if d.text_ok(client_id):
        found = yield from fetchval(
            "SELECT request_id FROM track_calls WHERE workspace_id = $1 AND client_call_id = $2",
            workspace,
            client_id,
        )
    if found is not None:
        return IngestResult(client_request_id=client_id, status="duplicate", request_id=found)
    try:
        request_id, applied = yield from savepoint(apply_track_call(d, workspace, call, now))
    except (NotFoundError, UnstorableText) as exc:
        return _rejected(client_id, str(exc))
    return IngestResult(
        client_request_id=client_id,
        status="stored" if applied else "duplicate",
        request_id=request_id,
    )


def ingest(
    d: Dialect, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected], now: float
) -> Op[list[IngestResult]]:
    """Store a batch in order: runs of records in bulk, track calls one by one."""
    results: list[IngestResult] = []
    run: list[RequestRow] = []
    for item in [*items, None]:
        if isinstance(item, RequestRow):
            run.append(item)
            continue
        if run:
            results += yield from store_rows(d, workspace, run, now)
            run = []
        if isinstance(item, Rejected):
            results.append(_rejected(item.client_request_id, item.error))
        elif isinstance(item, TrackCall):
            results.append((yield from _track_in_batch(d, workspace, item, now)))
    return results


# reading the log

SUMMARY_NAMES = (
    "id", "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_id", "prompt_version", "prompt_name", "input_variables", "tags", "metadata",
    "group_id", "start_time", "end_time", "input_tokens", "output_tokens", "price", "status",
    "error_type", "error_message", "score", "created_at", "span_id",
)  # fmt: skip
SUMMARY_COLUMNS = ", ".join(SUMMARY_NAMES)
_JSON_COLUMNS = frozenset({"input_variables", "tags"})  # metadata: read bounded
TRACKED_SHOWN = 2 * MAX_METADATA_KEYS
"""Metadata rows of a request read back: its logged keys' copies and what track.metadata set."""
_RENAMED = {"start_time": "request_start_time", "end_time": "request_end_time"}


def stored_ids(d: Dialect, workspace: int, client_ids: Sequence[str]) -> Op[dict[str, int]]:
    """Which of these client ids (records or track calls) the workspace has, with server ids."""
    wanted = sorted({c for c in client_ids if d.text_ok(c)})
    if not wanted:
        return {}
    calls = yield from fetch(
        "SELECT client_call_id, request_id FROM track_calls "
        f"WHERE workspace_id = $1 AND client_call_id {d.any_of('$2', 'text')}",
        workspace,
        d.array(wanted),
    )
    stored = {r[0]: r[1] for r in calls}
    stored.update((yield from _request_ids(d, workspace, wanted)))
    return stored


def summary(row: Row) -> dict[str, Any]:
    """A row selected with ``SUMMARY_COLUMNS`` as the API's request summary.

    Its metadata holds the first :data:`MAX_METADATA_KEYS` keys it was logged with (a row
    from before the server bounded metadata can hold millions); ``metadata_truncated`` says
    when there were more."""
    item: dict[str, Any] = {}
    for name, value in zip(SUMMARY_NAMES, row, strict=True):
        if name == "metadata":
            value, cut = bounded_object(value, MAX_METADATA_KEYS)
            if cut:
                item["metadata_truncated"] = True
        elif name in _JSON_COLUMNS and value is not None:
            value = stored_json(value)
        item[_RENAMED.get(name, name)] = value
    return item


def get_request(d: Dialect, workspace: int, ref: int | str) -> Op[dict[str, Any]]:
    """Everything stored about one request: body, blueprint, scores, metadata, groups.

    Metadata as :func:`summary` reads it (in the body too), with at most
    :data:`TRACKED_SHOWN` keys set by ``track.metadata`` (or copied from it into the filter's
    rows) beside it."""
    request_id = yield from resolve_ref(d, workspace, ref)
    row = yield from fetchrow(
        f"SELECT {SUMMARY_COLUMNS}, body, blueprint FROM {d.requests_with_payload} WHERE id = $1",
        request_id,
    )
    assert row is not None
    item = summary(row[:-2])
    item["body"], body_cut = bounded_body(row[-2], MAX_METADATA_KEYS)
    item["prompt_blueprint"] = stored_json(row[-1])
    tracked = yield from fetch(
        f"SELECT key, value FROM request_metadata WHERE request_id = $1 ORDER BY key{d.binary} "
        "LIMIT $2",
        request_id,
        TRACKED_SHOWN + 1,
    )
    stored = item["metadata"]
    if not isinstance(stored, dict):  # a row written around the server: keep it in view
        stored = {"(stored metadata)": stored} if stored not in (None, "") else {}
    item["metadata"] = {**stored, **dict(tracked[:TRACKED_SHOWN])}
    if body_cut or len(tracked) > TRACKED_SHOWN:
        item["metadata_truncated"] = True
    scores = yield from fetch(
        f"SELECT name, score FROM request_scores WHERE request_id = $1 ORDER BY name{d.binary}",
        request_id,
    )
    item["scores"] = dict(scores)
    groups = yield from fetch(
        "SELECT group_id FROM request_groups WHERE request_id = $1 ORDER BY group_id", request_id
    )
    item["groups"] = [g for (g,) in groups]
    return item
