"""The sans-I/O core: an operation is a generator that yields queries and receives their rows.

An operation never touches a connection. It yields :class:`Query` values (through
:func:`fetch`, :func:`fetchrow`, :func:`fetchval`, :func:`execute`, :func:`executemany`, so
``rows = yield from fetch(...)`` is typed) and a driver runs each one and sends the answer
back, the way httpx's auth flows yield requests and receive responses. A driver runs a whole
operation inside one transaction, so what it reads and writes is one consistent step.

SQL is written with numbered parameters (``$1``, ``$2``, ...), PostgreSQL's style; the SQLite
driver rewrites them to ``?1``, ``?2``. Rows come back as tuples on both drivers.

A database error ends the operation (the driver closes the generator and raises it); an
exception the operation raises itself (``NotFoundError``, ``UnstorableText``) travels out
through the driver unchanged, and :func:`savepoint` undoes only the part that raised.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar

__all__ = [
    "AfterCommit",
    "Done",
    "Instruction",
    "Op",
    "Query",
    "Row",
    "advance",
    "execute",
    "executemany",
    "fetch",
    "fetchrow",
    "fetchval",
    "on_commit",
    "savepoint",
    "split_script",
]

T = TypeVar("T")
Row: TypeAlias = tuple[Any, ...]
Fetch = Literal["all", "one", "value", "none", "many"]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement and what to bring back: ``all`` rows, ``one`` row (or None), the first
    column of the first row (``value``), nothing (``none``), or, for ``many``, the statement
    run once per argument tuple in ``args``."""

    sql: str
    args: Sequence[Any]
    fetch: Fetch


@dataclass(frozen=True, slots=True)
class AfterCommit:
    """Run ``callback`` once the operation's transaction has committed (never if it did not)."""

    callback: Callable[[], object]


Instruction: TypeAlias = Query | AfterCommit
# What an operation is: yields instructions, is sent each one's answer, returns its result.
Op: TypeAlias = Generator[Instruction, Any, T]


def fetch(sql: str, *args: Any) -> Generator[Instruction, Any, list[Row]]:
    rows: list[Row] = yield Query(sql, args, "all")
    return rows


def fetchrow(sql: str, *args: Any) -> Generator[Instruction, Any, Row | None]:
    row: Row | None = yield Query(sql, args, "one")
    return row


def fetchval(sql: str, *args: Any) -> Generator[Instruction, Any, Any]:
    return (yield Query(sql, args, "value"))


def execute(sql: str, *args: Any) -> Generator[Instruction, Any, None]:
    yield Query(sql, args, "none")


def executemany(sql: str, args: Iterable[Sequence[Any]]) -> Generator[Instruction, Any, None]:
    rows = list(args)
    if rows:
        yield Query(sql, rows, "many")


def on_commit(callback: Callable[[], object]) -> Generator[Instruction, Any, None]:
    yield AfterCommit(callback)


def savepoint(op: Op[T]) -> Op[T]:
    """Run ``op`` so that an exception it raises undoes its own writes and nothing else.

    Savepoints nest: each name refers to the innermost one open.
    """
    yield from execute("SAVEPOINT part")
    try:
        value = yield from op
    except Exception:
        yield from execute("ROLLBACK TO SAVEPOINT part")
        yield from execute("RELEASE SAVEPOINT part")
        raise
    yield from execute("RELEASE SAVEPOINT part")
    return value


def split_script(script: str) -> list[str]:
    """The statements of a migration file, in order (comments kept with their statement)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
        not text.strip() or text.strip().startswith("--") for text in pending.splitlines()
    ):
        raise ValueError(f"a migration ends without a semicolon: {pending.strip()[:80]!r}")
    return statements


@dataclass(frozen=True, slots=True)
class Done:
    """What an operation returned."""

    value: Any


def advance(op: Op[Any], answer: Any, after: list[Callable[[], object]]) -> Query | Done:
    """Send ``answer`` to ``op``: its next query, or :class:`Done` with its result.

    Callbacks it asks to run after commit are collected in ``after``: a driver runs them once
    the transaction has committed. This is the whole of a driver's loop but the I/O::

        step = advance(op, None, after)
        while isinstance(step, Query):
            step = advance(op, execute(conn, step), after)
        return step.value
    """
    try:
        instruction = op.send(answer)
        while isinstance(instruction, AfterCommit):
            after.append(instruction.callback)
            instruction = op.send(None)
    except StopIteration as done:
        return Done(done.value)
    return instruction
