"""The SQLite dialect: one file, one writer, the whole request in ``requests``.

Text is stored as given (SQLite holds NUL characters), text columns order by code point
already, and arrays travel as JSON text unpacked by ``json_each``. Tags are also kept one per
row in ``request_tags`` (by workspace, tag and time), for the tag filter.

Text search reads ``requests_fts``, an FTS5 trigram index of each request's conversation text
(the strings under ``text`` and ``content`` keys of its blueprint, as PostgreSQL's
``search_text``), contentless: the text is not stored twice.

What is derived from a request for the dashboard (the rollups, its tag and metadata rows, its
text in the index) costs more than storing it, so it is not done as requests arrive, which
would halve ingestion: :meth:`catch_up` does it in chunks when the writer has been quiet for
a moment, or has fallen too far behind, and ``caught_up.upto`` says how far it got. Every
read adds the few requests after that from the log itself (``derived_upto``), so what the
dashboard shows is exact whenever it looks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from promptrun.server.store.base import RequestRow
from promptrun.server.store.queries import metadata_rows
from promptrun.server.store.queries._sql import Op, execute, fetch, fetchval
from promptrun.server.store.queries.rollups import derive

__all__ = ["SQLITE"]

# RequestRow's fields, named as the columns they fill.
_COLUMNS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_id", "prompt_version", "prompt_name", "input_variables", "tags", "metadata",
    "group_id", "start_time", "end_time", "input_tokens", "output_tokens", "price", "status",
    "error_type", "error_message", "score", "body", "blueprint", "span_id",
)  # fmt: skip
_ROW_MARKS = "(" + ", ".join("?" * (len(_COLUMNS) + 2)) + ")"
_INSERT = f"INSERT INTO requests (workspace_id, {', '.join(_COLUMNS)}, created_at) VALUES "
# Rows per INSERT statement: well under SQLite's 32,766 parameters.
_ROWS_PER_INSERT = 500


def _json_of(column: str, kind: str, empty: str) -> str:
    """``column`` where it holds JSON of ``kind`` (array, object), else ``empty``: json_each
    would fail the whole statement on one row that does not (written around the server)."""
    return (
        f"CASE WHEN json_valid({column}) THEN CASE WHEN json_type({column}) = '{kind}' "
        f"THEN {column} ELSE '{empty}' END ELSE '{empty}' END"
    )


def text_of(blueprint: str) -> str:
    """SQL for the conversation text of a blueprint: its strings under ``text`` and
    ``content`` keys in document order, one per line, at most 16,384 characters."""
    strings = (
        "SELECT substr(group_concat(value, char(10)), 1, 16384) "
        f"FROM json_tree({blueprint}) WHERE key IN ('text', 'content') AND type = 'text'"
    )
    return f"CASE WHEN json_valid({blueprint}) THEN COALESCE(({strings}), '') ELSE '' END"


_UPTO = "(SELECT upto FROM caught_up)"
# json_each over request r's tags, when they are a JSON array (spelled out: see _json_of).
_TAGS_OF_R = (
    "json_each(CASE WHEN json_valid(r.tags) THEN CASE WHEN json_type(r.tags) = 'array' "
    "THEN r.tags ELSE '[]' END ELSE '[]' END) t"
)


def _nothing() -> Op[None]:
    return
    yield


class _SQLite:
    name = "sqlite"
    binary = ""
    schema_version_table = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
    requests_with_payload = "requests"
    by_id = "NOT INDEXED"  # after "requests r": read by id (the rowid range), no other index
    typed = False  # a column holds what it was given (rows written around the server)
    defers = True
    derived_upto = _UPTO
    fence = " LIMIT -1 OFFSET 0"  # after a subquery: keep it whole (its columns computed once)

    def text_ok(self, *values: str | None) -> bool:
        return True

    def check_text(self, *values: str | None) -> None:
        return None

    def safe_text(self, value: str | None) -> str | None:
        return value

    def row_problem(self, row: RequestRow) -> str | None:
        return None

    def any_of(self, placeholder: str, sql_type: Literal["int8", "text"]) -> str:
        return f"IN (SELECT value FROM json_each({placeholder}))"

    def array(self, values: Iterable[int] | Iterable[str]) -> Any:
        return msgspec.json.encode(list(values)).decode()

    def total(self, expression: str) -> str:
        return f"TOTAL({expression})"

    def floor_int(self, expression: str) -> str:
        # Only used on non-negative values, where truncation is the floor.
        return f"CAST({expression} AS INTEGER)"

    def insert_requests(
        self, workspace: int, now: float, rows: Sequence[RequestRow]
    ) -> Op[list[int | None]]:
        ids: list[int | None] = []
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            args: list[Any] = []
            for row in chunk:
                args += (workspace, *[getattr(row, c) for c in _COLUMNS], now)
            returned = yield from fetch(
                _INSERT
                + ", ".join([_ROW_MARKS] * len(chunk))
                + " ON CONFLICT (workspace_id, client_request_id) DO NOTHING "
                "RETURNING id, client_request_id",
                *args,
            )
            # One statement inserts in order, each row taking the next id: the ids returned,
            # sorted, belong to the rows inserted, in order.
            stored = {client_id for _, client_id in returned}
            new = iter(sorted(request_id for request_id, _ in returned))
            ids += [
                next(new)
                if row.client_request_id is None or row.client_request_id in stored
                else None
                for row in chunk
            ]
        return ids

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

    def tag_rows(self, row: str) -> tuple[str, str]:
        return f"json_each({_json_of(f'{row}.tags', 'array', '[]')}) t", "CAST(t.value AS TEXT)"

    def tag_filter(self, placeholder: str) -> str:
        return (
            "(EXISTS (SELECT 1 FROM request_tags g WHERE g.request_id = r.id "
            f"AND g.tag = {placeholder}) OR (r.id > {_UPTO} AND EXISTS (SELECT 1 FROM "
            f"{_TAGS_OF_R} WHERE CAST(t.value AS TEXT) = {placeholder})))"
        )

    def tag_source(self, workspace: str, placeholder: str) -> str | None:
        return (
            "(SELECT g.request_id AS id FROM request_tags g "
            f"WHERE g.workspace_id = {workspace} AND g.tag = {placeholder} UNION ALL "
            f"SELECT u.id FROM requests u WHERE u.id > {_UPTO} AND u.workspace_id = {workspace} "
            f"AND {self._tagged('u', placeholder)}) s"
        )

    def _tagged(self, row: str, placeholder: str) -> str:
        rows, tag = self.tag_rows(row)
        return f"EXISTS (SELECT 1 FROM {rows} WHERE {tag} = {placeholder})"

    def metadata_filter(self, row: str, key: str, value: str | None) -> str:
        metadata = _json_of(f"{row}.metadata", "object", "{}")
        equal = "" if value is None else f" AND j.value = {value}"
        return (
            f"EXISTS (SELECT 1 FROM json_each({metadata}) j "
            f"WHERE j.key = {key} AND j.type = 'text'{equal})"
        )

    def save_tags(self, where: str, *args: Any) -> Op[None]:
        rows, tag = self.tag_rows("r")
        yield from execute(
            "INSERT INTO request_tags (request_id, tag, workspace_id, start_time) "
            f"SELECT r.id, {tag}, r.workspace_id, r.start_time FROM requests r, {rows} "
            f"WHERE {where} ON CONFLICT DO NOTHING",
            *args,
        )

    def copy_metadata_sql(self, where: str) -> str:
        metadata = _json_of("r.metadata", "object", "{}")
        return (
            f"INSERT INTO request_metadata ({metadata_rows.COLUMNS}) "
            f"SELECT r.id, j.key, j.value, {metadata_rows.copies('r')} "
            f"FROM requests r, json_each({metadata}) j "
            f"WHERE ({where}) AND j.type = 'text' ON CONFLICT DO NOTHING"
        )

    def text_pattern(self, text: str) -> str:
        for char in ("!", "%", "_"):
            text = text.replace(char, "!" + char)
        return f"%{text}%"

    def text_phrase(self, text: str) -> str | None:
        # Trigrams: a text under three characters has none to look up.
        if len(text) < 3:
            return None
        return '"' + text.replace('"', '""') + '"'

    def text_filter(self, placeholder: str) -> str:
        return f"({text_of('r.blueprint')} LIKE {placeholder} ESCAPE '!')"

    def text_source(self, workspace: str, phrase: str, pattern: str) -> str | None:
        return (
            f"(SELECT f.rowid AS id FROM requests_fts({phrase}) f UNION ALL "
            f"SELECT u.id FROM requests u WHERE u.id > {_UPTO} "
            f"AND u.workspace_id = {workspace} "
            f"AND {text_of('u.blueprint')} LIKE {pattern} ESCAPE '!') s"
        )

    def text_window(self, phrase: str, pattern: str, low: str, high: str) -> str:
        return (
            f"SELECT f.rowid AS id FROM requests_fts({phrase}) f "
            f"WHERE f.rowid BETWEEN {low} AND {high} UNION ALL "
            f"SELECT u.id FROM requests u WHERE u.id BETWEEN {low} AND {high} "
            f"AND u.id > {_UPTO} AND {text_of('u.blueprint')} LIKE {pattern} ESCAPE '!'"
        )

    def catch_up(self, limit: int, *, lag: int = 0) -> Op[bool]:
        done = yield from fetchval("SELECT upto FROM caught_up")
        if lag:
            newest = yield from fetchval("SELECT COALESCE(MAX(id), 0) FROM requests")
            if newest - done <= lag:
                return False
        last = yield from fetchval(
            "SELECT max(id) FROM (SELECT id FROM requests WHERE id > $1 ORDER BY id LIMIT $2)",
            done,
            limit,
        )
        if last is None:
            return False
        yield from derive(self, "r.id > $1 AND r.id <= $2", done, last)
        yield from execute(
            "INSERT INTO requests_fts (rowid, search_text) "
            f"SELECT id, {text_of('blueprint')} FROM requests WHERE id > $1 AND id <= $2",
            done,
            last,
        )
        yield from execute("UPDATE caught_up SET upto = $1", last)
        more = yield from fetchval("SELECT EXISTS (SELECT 1 FROM requests WHERE id > $1)", last)
        return bool(more)

    def index_hint(self, index: str) -> str:
        return f"INDEXED BY {index}"

    def plan_each_query(self) -> Op[None]:
        return _nothing()

    def lock_schema(self) -> Op[None]:
        return _nothing()  # the migration's write transaction already excludes other writers


SQLITE = _SQLite()
