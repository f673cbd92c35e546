"""Every dashboard page renders whatever a stored request row holds, never a 500.

Rows stored before the server checked numbers, or written to the database by hand, can hold
anything SQLite lets a column hold: huge, negative or infinite times, text where numbers go,
absurd token counts, bytes that are not UTF-8, JSON that is not JSON or of the wrong shape.
They are written here straight into the SQLite file of a running server.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from promptrun.server.store.queries.metadata_rows import COLUMNS, copies

from ._dash import Visitor

pytestmark = pytest.mark.anyio

NOT_UTF8 = b"\xff\xfe caf\xe9 \xc3"
DEEP = "[" * 5000 + "]" * 5000
NOW = time.time()

# Each case overrides some columns of an ordinary row; bytes become BLOBs, or TEXT when the
# value is wrapped in _Text (SQLite then hands back bytes that do not decode).
HOSTILE: dict[str, dict[str, Any]] = {
    "times far out": {"start_time": 1e308, "end_time": -1e308},
    "infinite times": {"start_time": float("-inf"), "end_time": float("inf")},
    "a time in ms": {"start_time": NOW * 1000, "end_time": NOW * 1000 + 5},
    "an end far after a recent start": {"start_time": NOW - 10, "end_time": 1e308},
    "infinite end of a recent start": {"start_time": NOW - 20, "end_time": float("inf")},
    "text times": {"start_time": "NaN", "end_time": "yesterday"},
    "blob times": {"start_time": b"\x00\x01", "end_time": NOT_UTF8},
    "huge tokens": {"input_tokens": 2**63 - 1, "output_tokens": 2**63 - 1, "start_time": NOW - 5},
    "more huge tokens": {"input_tokens": 2**63 - 1, "output_tokens": 2**63 - 1},
    "negative tokens": {"input_tokens": -(2**63), "output_tokens": -1},
    "text tokens": {"input_tokens": "many", "output_tokens": 1.5},
    "huge prices": {"price": 1e308, "start_time": NOW - 30},
    "more huge prices": {"price": 1e308, "start_time": NOW - 31},
    "negative price": {"price": -1e308},
    "text price": {"price": "free"},
    "infinite price": {"price": float("inf"), "start_time": NOW - 40},
    "not utf-8 text": {"model": "TEXT", "provider": "TEXT", "status": "TEXT",
                       "prompt_name": "TEXT", "error_message": "TEXT", "function_name": "TEXT"},
    "empty strings": {"model": "", "provider": "", "status": "", "kind": ""},
    "a long model": {"model": "m" * 100_000},
    "bad json": {"tags": "not json", "metadata": "{", "input_variables": "[1,",
                 "body": "}{", "blueprint": "nope"},
    "json of the wrong shape": {"tags": '{"a": 1}', "metadata": "[1, 2]",
                                "input_variables": '"x"', "body": "[]", "blueprint": "null"},
    "deep json": {"tags": DEEP, "metadata": DEEP, "body": DEEP, "blueprint": DEEP},
    "numbers json cannot hold": {"metadata": '{"k": 1e999}', "blueprint": '{"a": 1e999}'},
    "json in blobs": {"tags": b'["a"]', "blueprint": NOT_UTF8},
    "a log row with junk templates": {
        "kind": "log",
        "body": '{"input": {"type": "chat", "messages": "x"}, "output": {"type": 5}}',
        "blueprint": '{"prompt_template": {"type": "completion", "content": 5}}',
    },
    "odd messages": {
        "blueprint": '{"prompt_template": {"type": "chat", "messages": [1, "x", null, '
        '{"role": 5, "content": {"type": 5}, "tool_calls": [1, {"function": "f"}]}, '
        '{"role": "assistant", "content": [{"type": "image_url", "image_url": 7}, '
        '{"type": "thinking", "thinking": null}, {"type": "text", "text": 3}]}], '
        '"tools": [1, {"function": 2}, {"name": null}]}, "metadata": {"model": 5}}',
        "body": '{"request_response": {"choices": 1}, "kwargs": 2}',
    },
    "odd scalars": {"score": "high", "prompt_version": "v1", "prompt_id": -1, "group_id": "g",
                    "created_at": "later", "api_type": 7, "client_request_id": "../../x?y#z"},
}  # fmt: skip


class _Text(bytes):
    """Bytes to store as TEXT (SQLite keeps them as given; reading them back fails to decode)."""


def _value(column: str, value: Any) -> Any:
    return _Text(NOT_UTF8) if value == "TEXT" else value


def _insert(conn: sqlite3.Connection, workspace: int, overrides: dict[str, Any]) -> int:
    row: dict[str, Any] = {
        "workspace_id": workspace, "client_request_id": None, "kind": "track",
        "provider": "openai", "model": "gpt-4o-mini", "function_name": "openai.chat",
        "api_type": None, "prompt_id": None, "prompt_version": None, "prompt_name": None,
        "input_variables": "{}", "tags": "[]", "metadata": "{}", "group_id": None,
        "start_time": NOW - 1, "end_time": NOW, "input_tokens": 10, "output_tokens": 5,
        "price": 0.0, "status": "SUCCESS", "error_type": None, "error_message": None,
        "score": None, "body": "{}", "blueprint": "{}", "created_at": NOW,
    }  # fmt: skip
    row.update({column: _value(column, value) for column, value in overrides.items()})
    names = ", ".join(row)
    marks = ", ".join(
        "CAST(? AS TEXT)" if isinstance(value, _Text) else "?" for value in row.values()
    )
    values = [bytes(v) if isinstance(v, _Text) else v for v in row.values()]
    cursor = conn.execute(f"INSERT INTO requests ({names}) VALUES ({marks})", values)
    request_id = cursor.lastrowid
    assert request_id is not None
    return request_id


def _workspace(conn: sqlite3.Connection) -> int:
    (found,) = conn.execute("SELECT workspace_id FROM requests ORDER BY id LIMIT 1").fetchone()
    return int(found)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "promptrun.db"  # the visitor's server uses this file


async def _fill(signed_in: Visitor, db_path: Path) -> dict[str, int]:
    await signed_in.log()  # an ordinary row, and the workspace it lives in
    ids: dict[str, int] = {}
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        workspace = _workspace(conn)
        for name, overrides in HOSTILE.items():
            ids[name] = _insert(conn, workspace, overrides)
        conn.execute(
            "INSERT INTO request_scores (request_id, name, score, created_at) "
            "VALUES (?, CAST(? AS TEXT), ?, ?)",
            (ids["odd scalars"], NOT_UTF8, "x", "y"),
        )
        conn.execute(  # a metadata row carries its request's summary (store/queries/metadata_rows)
            f"INSERT INTO request_metadata ({COLUMNS}) "
            f"SELECT r.id, CAST(? AS TEXT), ?, {copies('r')} FROM requests r WHERE r.id = ?",
            (NOT_UTF8, 5, ids["odd scalars"]),
        )
    return ids


PAGES = [
    "/dashboard/",
    "/dashboard/?range=1h",
    "/dashboard/?range=7d",
    "/dashboard/?range=30d",
    "/dashboard/requests",
    "/dashboard/requests?page=2",
    "/dashboard/requests?q=caf",
    "/dashboard/requests?tag=a",
    "/dashboard/requests?status=SUCCESS&since=2020-01-01T00:00",
    "/dashboard/prices",
    "/dashboard/prompts",
    "/dashboard/workflows",
]


async def test_every_page_that_lists_hostile_rows_renders(
    signed_in: Visitor, db_path: Path
) -> None:
    await _fill(signed_in, db_path)
    failures = {}
    for path in PAGES:
        status, page = await signed_in.get(path)
        if status != 200:
            failures[path] = (status, _message(page))
    assert failures == {}


async def test_each_hostile_row_has_a_detail_page_that_renders(
    signed_in: Visitor, db_path: Path
) -> None:
    ids = await _fill(signed_in, db_path)
    failures = {}
    for name, request_id in ids.items():
        status, page = await signed_in.get(f"/dashboard/requests/{request_id}")
        if status != 200:
            failures[name] = (status, _message(page))
    assert failures == {}


def _message(page: str) -> str:
    found = re.search(r"<main[^>]*>(.*?)</main>", page, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1) if found else page))[:300]


async def test_odd_values_show_as_what_they_are_not_as_made_up_numbers(
    signed_in: Visitor, db_path: Path
) -> None:
    ids = await _fill(signed_in, db_path)

    _, in_ms = await signed_in.get(f"/dashboard/requests/{ids['a time in ms']}")
    _, not_utf8 = await signed_in.get(f"/dashboard/requests/{ids['not utf-8 text']}")
    _, bad_json = await signed_in.get(f"/dashboard/requests/{ids['bad json']}")

    assert "(not a time)" in in_ms
    assert "caf\ufffd" in not_utf8  # the bytes that are not UTF-8 replaced, the rest kept
    assert "not json" in bad_json  # shown as stored
