"""The SQLite dialect: one file, one writer, the whole request in ``requests``.

Text is stored as given (SQLite holds NUL characters), text columns order by code point
already, and arrays travel as JSON text unpacked by ``json_each``. The dashboard's filters
scan the log: tags with ``json_each``, text with ``LIKE`` (case-insensitive for ASCII) over the
blueprint's JSON, the filter menus with ``SELECT DISTINCT``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from promptrun.server.store.base import RequestRow
from promptrun.server.store.queries._sql import Op, fetch
from promptrun.server.store.queries.dialect import Facet

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
# json_each fails the whole query on one row whose tags are not JSON (written around the server).
_TAGS = "CASE WHEN json_valid(requests.tags) THEN requests.tags ELSE '[]' END"


def _nothing() -> Op[None]:
    return
    yield


class _SQLite:
    name = "sqlite"
    binary = ""
    schema_version_table = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
    requests_with_payload = "requests"

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

    def tag_filter(self, placeholder: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each({_TAGS}) WHERE value = {placeholder})"

    def text_filter(self, placeholder: str) -> str:
        return f"blueprint LIKE {placeholder} ESCAPE '!'"

    def text_pattern(self, text: str) -> str:
        # The log keeps messages as JSON text, so look for the query as JSON would spell it.
        spelled = msgspec.json.encode(text).decode()[1:-1]
        for char in ("!", "%", "_"):
            spelled = spelled.replace(char, "!" + char)
        return f"%{spelled}%"

    def plan_each_query(self) -> Op[None]:
        return _nothing()

    def request_facets(self, workspace: int, limit: int) -> Op[dict[str, list[str]]]:
        facets: dict[str, list[str]] = {}
        for kind, column in (
            ("prompts", "prompt_name"),
            ("providers", "provider"),
            ("models", "model"),
            ("statuses", "status"),
        ):
            rows = yield from fetch(
                f"SELECT DISTINCT {column} FROM requests WHERE workspace_id = $1 "
                f"AND {column} IS NOT NULL AND {column} != '' ORDER BY 1 LIMIT $2",
                workspace,
                limit,
            )
            facets[kind] = [row[0] for row in rows]
        rows = yield from fetch(
            f"SELECT DISTINCT j.value FROM requests, json_each({_TAGS}) j "
            "WHERE requests.workspace_id = $1 ORDER BY 1 LIMIT $2",
            workspace,
            limit,
        )
        facets["tags"] = [str(row[0]) for row in rows]
        return facets

    def save_facets(self, facets: Iterable[Facet]) -> Op[None]:
        return _nothing()  # read from the log itself

    def lock_schema(self) -> Op[None]:
        return _nothing()  # the migration's write transaction already excludes other writers


SQLITE = _SQLite()
