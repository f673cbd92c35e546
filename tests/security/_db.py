"""Read a server's SQLite database from the test process: every table, or one workspace's rows.

The server commits a write before it answers, so a snapshot taken after an answer sees it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "WORKSPACE_ROWS",
    "cross_workspace_links",
    "max_id",
    "owned_ids",
    "snapshot",
    "tables",
    "workspace_id",
    "workspace_rows",
]

Snapshot = dict[str, list[tuple[Any, ...]]]

# A key's last use (and the hint filled in with it) is bookkeeping the server writes a moment
# after a request, whatever the request did: snapshots leave it out.
_KEY_COLUMNS = "id, key_hash, hash_kind, workspace_id, name, role, source, created_at, revoked_at"
_SNAPSHOT = {"api_keys": f"SELECT {_KEY_COLUMNS} FROM api_keys"}

# How to find one workspace's rows in each table (``?`` is its id). A table missing here
# fails the isolation test by name: add the new table (workflows, dashboard, ...) with the
# query that selects one workspace's rows.
WORKSPACE_ROWS: dict[str, str] = {
    "schema_version": "SELECT * FROM schema_version WHERE ? IS NOT NULL",
    "workspaces": "SELECT * FROM workspaces WHERE id = ?",
    "api_keys": f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE workspace_id = ?",
    "dashboard_sessions": "SELECT s.* FROM dashboard_sessions s "
    "JOIN api_keys k ON k.id = s.key_id WHERE k.workspace_id = ?",
    # Not a workspace's: failed sign-ins by client address and key tried, and the server's
    # secrets (the key HMAC's, the websocket tokens').
    "signin_failures": "SELECT * FROM signin_failures WHERE ? IS NULL",
    "server_secrets": "SELECT * FROM server_secrets WHERE ? IS NULL",
    "prompt_templates": "SELECT * FROM prompt_templates WHERE workspace_id = ?",
    "prompt_versions": "SELECT v.* FROM prompt_versions v "
    "JOIN prompt_templates t ON t.id = v.template_id WHERE t.workspace_id = ?",
    "release_labels": "SELECT l.* FROM release_labels l "
    "JOIN prompt_templates t ON t.id = l.template_id WHERE t.workspace_id = ?",
    "requests": "SELECT * FROM requests WHERE workspace_id = ?",
    "request_scores": "SELECT s.* FROM request_scores s "
    "JOIN requests r ON r.id = s.request_id WHERE r.workspace_id = ?",
    "request_metadata": "SELECT m.* FROM request_metadata m "
    "JOIN requests r ON r.id = m.request_id WHERE r.workspace_id = ?",
    "groups": "SELECT * FROM groups WHERE workspace_id = ?",
    "request_groups": "SELECT g.* FROM request_groups g "
    "JOIN requests r ON r.id = g.request_id WHERE r.workspace_id = ?",
    "track_calls": "SELECT * FROM track_calls WHERE workspace_id = ?",
    "model_prices": "SELECT * FROM model_prices WHERE workspace_id = ?",
    "workflows": "SELECT * FROM workflows WHERE workspace_id = ?",
    "workflow_versions": "SELECT v.* FROM workflow_versions v "
    "JOIN workflows w ON w.id = v.workflow_id WHERE w.workspace_id = ?",
    "workflow_labels": "SELECT l.* FROM workflow_labels l "
    "JOIN workflows w ON w.id = l.workflow_id WHERE w.workspace_id = ?",
    "workflow_executions": "SELECT * FROM workflow_executions WHERE workspace_id = ?",
    "workflow_node_results": "SELECT n.* FROM workflow_node_results n "
    "JOIN workflow_executions e ON e.id = n.execution_id WHERE e.workspace_id = ?",
    "spans": "SELECT * FROM spans WHERE workspace_id = ?",
    "traces": "SELECT * FROM traces WHERE workspace_id = ?",
    # The request log's rollups and what filters read beside it, each by workspace.
    "request_daily": "SELECT * FROM request_daily WHERE workspace_id = ?",
    "request_hourly": "SELECT * FROM request_hourly WHERE workspace_id = ?",
    "request_prompt_daily": "SELECT * FROM request_prompt_daily WHERE workspace_id = ?",
    "request_tag_daily": "SELECT * FROM request_tag_daily WHERE workspace_id = ?",
    "request_tag_hourly": "SELECT * FROM request_tag_hourly WHERE workspace_id = ?",
    "request_facets": "SELECT * FROM request_facets WHERE workspace_id = ?",
    "request_tags": "SELECT * FROM request_tags WHERE workspace_id = ?",
    "requests_fts": "SELECT rowid FROM requests_fts "
    "WHERE rowid IN (SELECT id FROM requests WHERE workspace_id = ?)",
    # Shared indexes and markers: no workspace's rows (the search index's own tables, how
    # far it has caught up, the rollups' one-time backfill).
    "requests_fts_data": "SELECT * FROM requests_fts_data WHERE ? IS NULL",
    "requests_fts_idx": "SELECT * FROM requests_fts_idx WHERE ? IS NULL",
    "requests_fts_docsize": "SELECT * FROM requests_fts_docsize WHERE ? IS NULL",
    "requests_fts_config": "SELECT * FROM requests_fts_config WHERE ? IS NULL",
    "caught_up": "SELECT * FROM caught_up WHERE ? IS NULL",
    "rollup_backfill": "SELECT * FROM rollup_backfill WHERE ? IS NULL",
}

# Rows that tie something of one workspace to something of another: each query counts them.
_CROSS_LINKS = {
    "request in another workspace's group": "SELECT COUNT(*) FROM request_groups rg "
    "JOIN requests r ON r.id = rg.request_id JOIN groups g ON g.id = rg.group_id "
    "WHERE r.workspace_id != g.workspace_id",
    "request naming another workspace's group": "SELECT COUNT(*) FROM requests r "
    "JOIN groups g ON g.id = r.group_id WHERE r.workspace_id != g.workspace_id",
    "request linked to another workspace's template": "SELECT COUNT(*) FROM requests r "
    "JOIN prompt_templates t ON t.id = r.prompt_id WHERE r.workspace_id != t.workspace_id",
    "track call on another workspace's request": "SELECT COUNT(*) FROM track_calls c "
    "JOIN requests r ON r.id = c.request_id WHERE r.workspace_id != c.workspace_id",
    "run of another workspace's workflow": "SELECT COUNT(*) FROM workflow_executions e "
    "JOIN workflows w ON w.id = e.workflow_id WHERE w.workspace_id != e.workspace_id",
    "node result naming another workspace's request": "SELECT COUNT(*) "
    "FROM workflow_node_results n JOIN workflow_executions e ON e.id = n.execution_id "
    "JOIN requests r ON r.id = n.request_id WHERE r.workspace_id != e.workspace_id",
    "tag row of another workspace's request": "SELECT COUNT(*) FROM request_tags g "
    "JOIN requests r ON r.id = g.request_id WHERE r.workspace_id != g.workspace_id",
}


@contextmanager
def _reader(db_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
        yield conn


def settle(db_path: Path, *, within: float = 30.0) -> None:
    """Wait until the server has derived its data (rollups, filter rows, the text index) for
    every stored request: SQLite fills them a moment after writes pause."""
    deadline = time.monotonic() + within
    while True:
        with _reader(db_path) as conn:
            upto = conn.execute("SELECT COALESCE(MAX(upto), 0) FROM caught_up").fetchone()[0]
            newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM requests").fetchone()[0]
        if upto >= newest:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"derived data stuck at request {upto} of {newest}")
        time.sleep(0.02)


def tables(db_path: Path) -> list[str]:
    with _reader(db_path) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]


def snapshot(db_path: Path) -> Snapshot:
    """Every row of every table, in rowid order."""
    with _reader(db_path) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        # Table names come from sqlite_master itself, not from any input.
        return {
            name: conn.execute(_SNAPSHOT.get(name, f'SELECT * FROM "{name}"')).fetchall()
            for name in names
        }


def workspace_rows(db_path: Path, workspace_id: int) -> Snapshot:
    """One workspace's rows in every table, sorted; KeyError names a table not mapped."""
    with _reader(db_path) as conn:
        out: Snapshot = {}
        for name in tables(db_path):
            query = WORKSPACE_ROWS[name]
            out[name] = sorted(conn.execute(query, (workspace_id,)).fetchall(), key=repr)
        return out


def cross_workspace_links(db_path: Path) -> dict[str, int]:
    """How many rows tie two workspaces together, by kind (all should be 0)."""
    counts: dict[str, int] = {}
    with _reader(db_path) as conn:
        for what, query in _CROSS_LINKS.items():
            try:
                counts[what] = conn.execute(query).fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):  # a schema without that part yet
                    raise
    return counts


def workspace_id(db_path: Path, name: str) -> int:
    with _reader(db_path) as conn:
        return int(conn.execute("SELECT id FROM workspaces WHERE name = ?", (name,)).fetchone()[0])


def max_id(db_path: Path) -> int:
    """The largest rowid in any table: past it, no id of anything exists yet."""
    with _reader(db_path) as conn:
        found = [0]
        for name in tables(db_path):
            if name.startswith("requests_fts"):  # the text index's own blocks, not ids
                continue
            try:
                found.append(
                    conn.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{name}"').fetchone()[0]
                )
            except sqlite3.OperationalError as exc:  # WITHOUT ROWID: keyed by what it sums
                if "no such column: rowid" not in str(exc):
                    raise
        return max(found)


def owned_ids(db_path: Path, workspace_id: int) -> dict[str, set[int]]:
    """The ids of the workspace's requests, groups, templates, workflows and executions."""
    with _reader(db_path) as conn:
        return {
            kind: {row[0] for row in conn.execute(query, (workspace_id,))}
            for kind, query in (
                ("request", "SELECT id FROM requests WHERE workspace_id = ?"),
                ("group", "SELECT id FROM groups WHERE workspace_id = ?"),
                ("template", "SELECT id FROM prompt_templates WHERE workspace_id = ?"),
                ("workflow", "SELECT id FROM workflows WHERE workspace_id = ?"),
                ("execution", "SELECT id FROM workflow_executions WHERE workspace_id = ?"),
            )
        }
