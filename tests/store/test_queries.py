"""The sans-I/O core on plain data: operations driven by hand, no database."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from promptrun.server.store.base import NotFoundError, RequestQuery
from promptrun.server.store.drivers.sqlite import run
from promptrun.server.store.queries import keys, log_filter
from promptrun.server.store.queries._sql import (
    Done,
    Op,
    Query,
    advance,
    execute,
    fetchval,
    on_commit,
    savepoint,
    split_script,
)
from promptrun.server.store.queries.postgres import PostgresDialect, search_text
from promptrun.server.store.queries.sqlite import SQLITE, text_of


def drive(op: Op[Any], answers: dict[str, Any]) -> tuple[Any, list[str]]:
    """Run ``op``, answering each query by the first key found in its SQL; the SQL it sent."""
    sent: list[str] = []
    after: list[Any] = []
    step = advance(op, None, after)
    while isinstance(step, Query):
        sent.append(step.sql)
        answer = next((a for k, a in answers.items() if k in step.sql), None)
        step = advance(op, answer, after)
    assert isinstance(step, Done)
    return step.value, sent


def test_an_operation_yields_its_queries_and_returns_what_it_made_of_the_rows() -> None:
    value, sent = drive(keys.workspace_for_key(SQLITE, "h"), {"api_keys": 7})
    assert value == 7
    assert sent == ["SELECT workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"]


def test_a_failing_part_in_a_savepoint_rolls_back_to_it_and_raises() -> None:
    def failing() -> Op[int]:
        yield from execute("INSERT INTO t VALUES (1)")
        raise NotFoundError("no such thing")

    def whole() -> Op[str]:
        try:
            yield from savepoint(failing())
        except NotFoundError as exc:
            return exc.message
        return "unreachable"

    value, sent = drive(whole(), {})
    assert value == "no such thing"
    assert sent == [
        "SAVEPOINT part",
        "INSERT INTO t VALUES (1)",
        "ROLLBACK TO SAVEPOINT part",
        "RELEASE SAVEPOINT part",
    ]


def test_after_commit_callbacks_are_collected_not_run() -> None:
    ran: list[str] = []

    def op() -> Op[int]:
        yield from on_commit(lambda: ran.append("x"))
        return int((yield from fetchval("SELECT 1")))

    after: list[Any] = []
    step = advance(op(), None, after)
    assert isinstance(step, Query) and ran == [] and len(after) == 1


def test_the_sqlite_driver_runs_numbered_parameters_and_closes_a_failed_operation() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b)")
    closed: list[bool] = []

    def op() -> Op[Any]:
        yield from execute("INSERT INTO t VALUES ($2, $1)", "second", "first")
        return (yield from fetchval("SELECT a || b FROM t WHERE b = $1", "second"))

    assert run(conn, op(), []) == "firstsecond"

    def broken() -> Op[None]:
        try:
            yield from execute("SELECT * FROM missing_table")
        finally:
            closed.append(True)

    with pytest.raises(sqlite3.OperationalError, match="missing_table"):
        run(conn, broken(), [])
    assert closed == [True]


def test_migration_files_split_into_statements_with_comments_kept() -> None:
    script = "-- a; comment\nCREATE TABLE a (x);\n\nCREATE TABLE b (\n  y -- why; not\n);\n"
    assert split_script(script) == [
        "-- a; comment\nCREATE TABLE a (x);",
        "CREATE TABLE b (\n  y -- why; not\n);",
    ]
    with pytest.raises(ValueError, match="without a semicolon"):
        split_script("CREATE TABLE c (z)")


def test_each_dialect_spells_the_search_its_own_way() -> None:
    postgres = PostgresDialect()
    query = RequestQuery(tag="t", text="50%_off", model="m")
    found = log_filter.Filter(SQLITE, 1, query)
    assert found.args == [1, "m", "t", "%50!%!_off%", '"50%_off"']
    where = found.where(sets=frozenset({"tag", "text"}))
    assert "request_tags" in where and "requests_fts($5)" in where and "ESCAPE '!'" in where
    found = log_filter.Filter(postgres, 1, query)
    assert found.args == [1, "m", "t", "%50\\%\\_off%"]
    where = found.where(sets=frozenset({"tag", "text"}))
    assert "tags @> jsonb_build_array($3::text)" in where and "ILIKE $4" in where
    # Under three characters SQLite's trigram index has nothing to look up: rows are read.
    assert log_filter.Filter(SQLITE, 1, RequestQuery(text="of")).text_set() is None


def test_sqlite_indexes_the_same_conversation_text_as_postgres_stores() -> None:
    conn = sqlite3.connect(":memory:")
    for blueprint in (
        '{"messages": [{"role": "user", "content": "hi"}, {"text": "there"}]}',
        '{"prompt_template": {"messages": [{"content": [{"type": "text", "text": "a"}, '
        '{"type": "image_url", "image_url": {"url": "x"}}]}, {"content": "b", "text": 5}]}}',
        '{"text": "only"}',
        "[]",
    ):
        (indexed,) = conn.execute(f"SELECT {text_of('?1')}", (blueprint,)).fetchone()
        assert indexed == search_text(blueprint)
    for hostile in ("not json", "[" * 5000 + "]" * 5000, None, b"\xff"):
        assert conn.execute(f"SELECT {text_of('?1')}", (hostile,)).fetchone() == ("",)


def test_postgres_refuses_nul_in_text_and_indexes_only_the_conversation() -> None:
    postgres = PostgresDialect()
    assert not postgres.text_ok("a\x00b") and postgres.text_ok("ab", None)
    assert SQLITE.text_ok("a\x00b")
    assert postgres.safe_text("a\x00b") == "a\ufffdb"
    text = search_text('{"messages": [{"role": "user", "content": "hi"}, {"text": "there"}]}')
    assert text == "hi\nthere"


def test_folded_sums_count_what_is_not_a_finite_number_as_nothing() -> None:
    from decimal import Decimal

    from promptrun.server.store.queries.rollups import MEASURES, fold

    width = len(MEASURES)
    at = {name: i for i, name in enumerate(MEASURES)}

    def measures(**given: Any) -> tuple[Any, ...]:
        values: list[Any] = [1] * width
        for name, value in given.items():
            values[at[name]] = value
        return ("key", *values)

    clean = measures(latency_max=2.5)
    odd = measures(
        requests=Decimal("3"),
        input_tokens=float("nan"),
        output_tokens=float("inf"),
        logged_price="free",
        unpriced_input=None,
        unpriced_output=10**400,
        latency_max=float("-inf"),
    )
    one = fold([odd], 1)
    assert one["requests"] == 3.0 and one["input_tokens"] == 0 and one["output_tokens"] == 0
    assert (one["logged_price"], one["unpriced_input"], one["latency_max"]) == (0, 0, 0)
    assert one["unpriced_output"] == 10**400  # a finite integer, however large
    both = fold([clean, measures(requests=Decimal("NaN"), latency_max=4.0)], 1)
    assert (both["requests"], both["latency_max"], both["h0"]) == (1, 4.0, 2)
    assert fold([clean], 1).values == clean[1:]
