"""The PostgreSQL dialect: several server processes on one database, fast at millions of rows.

Text cannot hold NUL characters: a value with one is refused (``UnstorableText``, a 400)
rather than stored altered, except error texts of workflow runs, stored with U+FFFD in its
place. Arrays are typed array parameters.

The request log is laid out for the dashboard at scale (``migrations/postgres/``): a request's
body and blueprint live in ``request_payloads`` so the rows that filters and counts scan stay
narrow; ``search_text`` holds the conversation's words (:func:`search_text`) under a trigram
index for text search, written with the request; ``tags`` is JSONB under a GIN index. The
rollups and filter menus are kept in the storing transaction (``queries/rollups.py``).

A run of records is stored with one multi-row ``INSERT ... SELECT FROM unnest(...)`` (and one
more for the payloads). Ids are drawn from the sequence first, so they follow the batch's
order, and rows go in in client-id order, so two batches sharing ids lock them in one order
and cannot deadlock; the unique (workspace, client id) constraint decides what is new, and a
record another process is storing at that moment waits for it and then reads as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from promptrun.server.store.base import RequestRow, UnstorableText
from promptrun.server.store.queries import metadata_rows
from promptrun.server.store.queries._sql import Op, execute, fetch, fetchval

__all__ = ["SEARCH_TEXT_LIMIT", "PostgresDialect", "search_text"]

_decode = msgspec.json.decode
NUL_MESSAGE = "text may not contain NUL (\\u0000) characters; PostgreSQL cannot store them"
_TEXT_FIELDS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_name", "status", "error_type", "error_message", "score_name",
)  # fmt: skip
_TYPES = {
    "client_request_id": "text", "kind": "text", "provider": "text", "model": "text",
    "function_name": "text", "api_type": "text", "prompt_id": "int8", "prompt_version": "int8",
    "prompt_name": "text", "input_variables": "text", "tags": "text", "metadata": "text",
    "group_id": "int8", "start_time": "float8", "end_time": "float8", "input_tokens": "int8",
    "output_tokens": "int8", "price": "float8", "status": "text", "error_type": "text",
    "error_message": "text", "score": "int8", "span_id": "text",
}  # fmt: skip
# RequestRow's fields kept in the log table (body and blueprint go to request_payloads).
_LOG_COLUMNS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_id", "prompt_version", "prompt_name", "input_variables", "tags", "metadata",
    "group_id", "start_time", "end_time", "input_tokens", "output_tokens", "price", "status",
    "error_type", "error_message", "score", "span_id",
)  # fmt: skip
_SELECTED = ", ".join(f"u.{c}::jsonb" if c == "tags" else f"u.{c}" for c in _LOG_COLUMNS)
_INSERT = (
    f"INSERT INTO requests (id, workspace_id, search_text, {', '.join(_LOG_COLUMNS)}, "
    f"created_at) SELECT u.id, $1, u.search_text, {_SELECTED}, $2 FROM unnest($3::int8[], "
    "$4::text[], "
    + ", ".join(f"${i + 5}::{_TYPES[c]}[]" for i, c in enumerate(_LOG_COLUMNS))
    + f") AS u(id, search_text, {', '.join(_LOG_COLUMNS)}) "
    "ON CONFLICT (workspace_id, client_request_id) DO NOTHING RETURNING id"
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


def _tags_of(row: RequestRow) -> list[Any]:
    tags = _decode(row.tags)
    return tags if isinstance(tags, list) else []


class PostgresDialect:
    """The hooks for PostgreSQL."""

    name = "postgres"
    binary = ' COLLATE "C"'
    schema_version_table = (
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    requests_with_payload = "requests JOIN request_payloads p ON p.request_id = requests.id"
    by_id = ""  # after "requests r": read by id (the rowid range), no other index
    typed = True  # a parameter must be of its column's type
    defers = False  # rollups and indexes are written in the storing transaction
    derived_upto = "9223372036854775807"
    fence = " OFFSET 0"  # after a subquery: keep it whole (its columns computed once)

    def text_ok(self, *values: str | None) -> bool:
        return not any(value and "\x00" in value for value in values)

    def check_text(self, *values: str | None) -> None:
        if not self.text_ok(*values):
            raise UnstorableText(NUL_MESSAGE)

    def safe_text(self, value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "\ufffd")

    def row_problem(self, row: RequestRow) -> str | None:
        for name in _TEXT_FIELDS:  # a plain loop: it runs for every field of every record
            value = getattr(row, name)
            if value and "\x00" in value:
                return NUL_MESSAGE
        # JSONB refuses \u0000 even escaped; the other JSON columns are text and keep the escape.
        if "\\u0000" in row.tags and any("\x00" in str(tag) for tag in _tags_of(row)):
            return NUL_MESSAGE
        return None

    def any_of(self, placeholder: str, sql_type: Literal["int8", "text"]) -> str:
        return f"= ANY({placeholder}::{sql_type}[])"

    def array(self, values: Iterable[int] | Iterable[str]) -> Any:
        return list(values)

    def total(self, expression: str) -> str:
        # SUM over int8 is numeric (no overflow); float8 for one result type on both stores.
        return f"COALESCE(SUM(({expression})::float8), 0)"

    def floor_int(self, expression: str) -> str:
        return f"floor({expression})::int8"

    def insert_requests(
        self, workspace: int, now: float, rows: Sequence[RequestRow]
    ) -> Op[list[int | None]]:
        # Ids drawn first, so they follow the rows' order whatever order they go in.
        drawn = yield from fetchval(
            "SELECT array_agg(nextval('requests_id_seq')) FROM generate_series(1, $1)", len(rows)
        )
        ids = sorted(drawn)
        order = sorted(range(len(rows)), key=lambda i: rows[i].client_request_id or "")
        columns = [[getattr(rows[i], c) for i in order] for c in _LOG_COLUMNS]
        texts = [search_text(rows[i].blueprint) for i in order]
        returned = yield from fetch(
            _INSERT, workspace, now, [ids[i] for i in order], texts, *columns
        )
        inserted = {r[0] for r in returned}
        stored = [i for i in range(len(rows)) if ids[i] in inserted]
        if stored:
            yield from execute(
                _PAYLOAD_INSERT,
                [ids[i] for i in stored],
                [rows[i].body for i in stored],
                [rows[i].blueprint for i in stored],
            )
        return [ids[i] if ids[i] in inserted else None for i in range(len(rows))]

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    def tag_rows(self, row: str) -> tuple[str, str]:
        tags = f"CASE WHEN jsonb_typeof({row}.tags) = 'array' THEN {row}.tags ELSE '[]' END"
        return f"jsonb_array_elements_text({tags}) AS t(tag)", "t.tag"

    def tag_filter(self, placeholder: str) -> str:
        return f"r.tags @> jsonb_build_array({placeholder}::text)"

    def tag_source(self, workspace: str, placeholder: str) -> str | None:
        return None  # the GIN index answers tag_filter

    def save_tags(self, where: str, *args: Any) -> Op[None]:
        return _nothing()  # tags is JSONB, indexed as it is

    def metadata_filter(self, row: str, key: str, value: str | None) -> str:
        return "false"  # every request's metadata is in request_metadata as it is stored

    def copy_metadata_sql(self, where: str) -> str:
        # JSONB refuses \u0000 even escaped: such metadata stays out of the filter's table.
        metadata = (
            "CASE WHEN r.metadata LIKE '{%' AND strpos(r.metadata, '\\u0000') = 0 "
            "THEN r.metadata::jsonb ELSE '{}' END"
        )
        return (
            f"INSERT INTO request_metadata ({metadata_rows.COLUMNS}) "
            f"SELECT r.id, j.key, j.value #>> '{{}}', {metadata_rows.copies('r')} FROM requests r "
            f"CROSS JOIN jsonb_each({metadata}) j "
            f"WHERE ({where}) AND jsonb_typeof(j.value) = 'string' ORDER BY 1, 2 "
            "ON CONFLICT DO NOTHING"
        )

    def text_pattern(self, text: str) -> str:
        # A substring of the conversation's text, ignoring case as SQLite's LIKE does.
        for char in ("\\", "%", "_"):
            text = text.replace(char, "\\" + char)
        return f"%{text}%"

    def text_phrase(self, text: str) -> str | None:
        return None  # text_filter reads the trigram index

    def text_filter(self, placeholder: str) -> str:
        return f"r.search_text ILIKE {placeholder}"

    def text_source(self, workspace: str, phrase: str, pattern: str) -> str | None:
        return None

    def text_window(self, phrase: str, pattern: str, low: str, high: str) -> str:
        return (
            f"SELECT r.id FROM requests r WHERE r.id BETWEEN {low} AND {high} "
            f"AND r.search_text ILIKE {pattern}"
        )

    def catch_up(self, limit: int, *, lag: int = 0) -> Op[bool]:
        return _nothing_more()  # every index is written with the request

    def index_hint(self, index: str) -> str:
        return ""  # the planner walks the index the ORDER BY names when that is cheaper

    def plan_each_query(self) -> Op[None]:
        # Filters are many and their values skewed: a generic plan would serve some badly.
        yield from execute("SET LOCAL plan_cache_mode = force_custom_plan")

    def lock_schema(self) -> Op[None]:
        # Any constant works; it only has to be the same in every promptrun process.
        yield from execute("SELECT pg_advisory_xact_lock($1)", 0x70726F6D7074)  # "prompt"


def _nothing() -> Op[None]:
    return
    yield


def _nothing_more() -> Op[bool]:
    yield from ()
    return False
