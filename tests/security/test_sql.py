"""SQL is parameterised: no value is ever formatted into SQL text in the server's code."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from ._sqlcheck import check_file, check_tree

SERVER = Path(__file__).resolve().parents[2] / "runtime" / "promptrun" / "server"


def findings(source: str) -> list[str]:
    tree = ast.parse("import sqlite3\n" + textwrap.dedent(source))
    return [f.code for f in check_tree(tree, Path("snippet.py"))]


# SQL the check cannot follow, read and found safe: (file name, code) -> why.
_DRIVER = (
    "a driver runs the Query an operation yielded; every Query's SQL is checked where the "
    "operation makes it (fetch, execute, ... in store/queries/)"
)
REVIEWED = {
    ("postgres.py", "query.sql"): _DRIVER,
    ("sqlite.py", "sql"): _DRIVER + "; here with $n rewritten to ?n",
    ("migrate.py", "statement"): "a statement of the migration files shipped in the package "
    "(store/migrations/), read from there and never from elsewhere",
}
# Functions that compose the request log's SQL from fragments handed between functions and a
# filter object, which the check does not follow: each fragment is a literal, a dialect hook's
# text or a $n placeholder (log_filter.Filter.add), and values travel only as parameters
# (Filter.bind). tests/security/test_request_log_sql.py runs every one of them on both
# stores with hostile values in every field and checks that no SQL a driver receives holds any.
COMPOSED = {
    ("log_filter.py", "Filter._logged"), ("log_filter.py", "Filter.meta_row"),
    ("log_filter.py", "Filter.meta_set"), ("log_filter.py", "Filter.meta_rows"),
    ("log_filter.py", "Filter.where"), ("metadata_rows.py", "set_values"),
    ("log_filter.py", "capped_count"), ("log_filter.py", "driver"),
    ("log_filter.py", "rollup_sums"), ("log_search.py", "_order"),
    ("log_search.py", "_rows_of"), ("log_search.py", "_text_window_walk"),
    ("log_search.py", "request_page"), ("log_search.py", "request_stats"),
    ("rollups.py", "_facets_sql"), ("rollups.py", "_upsert_sql"), ("rollups.py", "derive"),
    ("rollups.py", "derive_facets"), ("rollups.py", "raw_rows"), ("rollups.py", "raw_sums"),
    ("sqlite.py", "_SQLite.catch_up"), ("sqlite.py", "_SQLite.save_tags"),
    ("sqlite.py", "text_of"),
}  # fmt: skip


def _function_at(path: Path, line: int) -> str:
    """The innermost function (Class.method for a method) whose lines hold ``line``."""
    tree = ast.parse(path.read_text())
    named: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            named.setdefault(id(node), node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    named[id(item)] = f"{node.name}.{item.name}"
    best: tuple[int, str] = (0, "")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.lineno <= line <= (node.end_lineno or node.lineno)
        ):
            best = max(best, (node.lineno, named[id(node)]))
    return best[1]


def test_no_sql_in_the_server_is_built_from_values() -> None:
    files = sorted(SERVER.rglob("*.py"))
    assert any(p.name == "requests.py" and p.parent.name == "queries" for p in files)
    found = [
        str(f)
        for path in files
        for f in check_file(path)
        if (Path(f.path).name, f.code) not in REVIEWED
        and (path.name, _function_at(path, f.line)) not in COMPOSED
    ]
    assert not found, (
        "SQL text built from a value (pass values as ? parameters; build SQL only from "
        "literals):\n" + "\n".join(found)
    )


def test_each_composing_function_exempted_still_exists() -> None:
    present = {
        (path.name, _function_at(path, node.lineno))
        for path in SERVER.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert present >= COMPOSED


def test_the_server_code_has_sql_for_the_check_to_look_at() -> None:
    calls = 0
    for path in SERVER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and (
                getattr(node.func, "attr", "") == "execute"
                or getattr(node.func, "id", "") in ("execute", "fetch", "fetchrow", "fetchval")
            ):
                calls += 1
    assert calls >= 40


@pytest.mark.parametrize(
    "source",
    [
        # a value in an f-string
        """
        def find(conn, name):
            return conn.execute(f"SELECT * FROM t WHERE name = '{name}'")
        """,
        # %-formatting and .format
        """
        def find(conn, name):
            return conn.execute("SELECT * FROM t WHERE name = '%s'" % name)
        """,
        """
        def find(conn, column):
            return conn.execute("SELECT {} FROM t".format(column))
        """,
        # SQL handed in from elsewhere
        """
        def run(conn, query):
            return conn.execute(query)
        """,
        # a value that reaches the text through +=, a list, or a helper's return
        """
        def find(conn, column, value):
            where = "workspace_id = ?"
            where += f" AND {column} = ?"
            return conn.execute(f"SELECT * FROM t WHERE {where}", (value,))
        """,
        """
        def find(conn, filters):
            clauses = ["workspace_id = ?"]
            for key in filters:
                clauses.append(f"{key} = ?")
            return conn.execute("SELECT * FROM t WHERE " + " AND ".join(clauses))
        """,
        """
        def _where(order):
            return f"1 = 1 ORDER BY {order}", ()

        def find(conn, order):
            where, args = _where(order)
            return conn.execute(f"SELECT * FROM t WHERE {where}", args)
        """,
        # SQL text made outside any execute call
        """
        def query_for(table):
            return f"DELETE FROM {table}"
        """,
        # asyncpg's calls, with a value where a $n placeholder belongs
        """
        async def page(conn, workspace, limit):
            return await conn.fetch(f"SELECT * FROM t WHERE w = $1 LIMIT {limit}", workspace)
        """,
        # the store's operations: a value in the SQL an operation yields
        """
        def find(d, name):
            return (yield from fetch(f"SELECT * FROM t WHERE name = '{name}'"))
        """,
        """
        def find(d, name):
            return (yield from Query(f"SELECT * FROM t WHERE name = '{name}'", (), "all"))
        """,
        # a value carried into SQL through a dialect hook, or a hook no dialect has
        """
        def tagged(d: Dialect, tag):
            return (yield from fetch(f"SELECT id FROM requests WHERE {d.tag_filter(tag)}"))
        """,
        """
        def tagged(d: Dialect):
            return (yield from fetch(f"SELECT id FROM requests WHERE {d.no_such_hook}"))
        """,
        # a dialect's own SQL (the attribute of an object that is not the Dialect)
        """
        def tagged(store):
            return (yield from fetch(f"SELECT id FROM t ORDER BY name{store.binary}"))
        """,
    ],
)
def test_the_check_reports_values_formatted_into_sql(source: str) -> None:
    assert findings(source)


def test_the_check_accepts_sql_built_from_literals_with_values_as_parameters() -> None:
    assert not findings(
        """
        _COLUMNS = ("id", "name", "tags")
        _SELECT = f"SELECT {', '.join(_COLUMNS)} FROM t"

        def _where(name):
            clauses = ["workspace_id = ?"]
            args = [1]
            for column, value in (("name", name), ("kind", None)):
                if value is not None:
                    clauses.append(f"{column} = ?")
                    args.append(value)
            return " AND ".join(clauses), tuple(args)

        def find(conn, ids, name):
            marks = ", ".join("?" * len(ids))
            where, args = _where(name)
            where += " AND deleted = 0"
            conn.execute(f"{_SELECT} WHERE {where} AND id IN ({marks})", (*args, *ids))
            for statement in "CREATE TABLE a (x); CREATE TABLE b (y)".split(";"):
                conn.execute(statement)

        _TYPES = {"id": "int8", "name": "text"}
        _UNNEST = ", ".join(f"${i + 2}::{_TYPES[c]}[]" for i, c in enumerate(_COLUMNS))

        async def page(conn, workspace, limit, offset):
            args = (workspace,)
            n = len(args)
            await conn.fetch(f"SELECT * FROM unnest({_UNNEST}) LIMIT ${n + 1} OFFSET ${n + 2}")

        def tagged(d: Dialect, tag):
            args = [tag]
            where = d.tag_filter(f"${len(args)}")
            return (yield from fetch(f"SELECT id FROM t WHERE {where} ORDER BY name{d.binary}"))

        def fetch(sql, *args):
            return (yield Query(sql, args, "all"))
        """
    )
