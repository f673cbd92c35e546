"""The schema, as numbered SQL files per dialect, applied in order by one runner.

``migrations/<dialect>/NNNN_name.sql`` holds migration NNNN (numbered from 1, no gaps);
``schema_version`` records each one applied. :func:`migrate` runs in the store's first write
transaction, so a failure leaves the old schema intact, and after the dialect's
``lock_schema`` (PostgreSQL: an advisory lock; SQLite: the write transaction itself), so
processes starting together on one database take turns: one migrates, the others find the
work done. Add a migration as the next numbered file; never edit one that has shipped.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from promptrun.server.store.queries._sql import Op, execute, fetchval, split_script
from promptrun.server.store.queries.dialect import Dialect

__all__ = ["migrate", "migrations"]

_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


@cache
def migrations(dialect: str) -> tuple[tuple[str, ...], ...]:
    """The statements of each migration of ``dialect``, in order."""
    folder = resources.files("promptrun.server.store").joinpath("migrations", dialect)
    found = sorted(
        (int(match.group(1)), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := _FILE.fullmatch(entry.name))
    )
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {numbers}")
    return tuple(tuple(split_script(script)) for _, script in found)


def migrate(d: Dialect) -> Op[int]:
    """Bring the database to the latest schema; returns the version it is at."""
    scripts = migrations(d.name)
    yield from d.lock_schema()
    yield from execute(d.schema_version_table)
    current = int((yield from fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")))
    if current > len(scripts):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this promptrun "
            f"understands ({len(scripts)}); upgrade promptrun or use another --db"
        )
    for number in range(current + 1, len(scripts) + 1):
        for statement in scripts[number - 1]:
            yield from execute(statement)
        yield from execute("INSERT INTO schema_version (version) VALUES ($1)", number)
    return len(scripts)
