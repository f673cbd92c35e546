"""The SQLite schema, as numbered migrations applied in order at start.

``schema_version`` holds the highest migration applied. Add a migration by appending to
``MIGRATIONS``; never edit one that has shipped. JSON columns are msgspec-encoded TEXT.
"""

from __future__ import annotations

import sqlite3

from promptrun.server.store import _workflows

__all__ = ["MIGRATIONS", "migrate"]

_V1 = """
CREATE TABLE workspaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    created_at REAL NOT NULL
);
CREATE TABLE prompt_templates (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    folder_id INTEGER,
    created_at REAL NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE TABLE prompt_versions (
    id INTEGER PRIMARY KEY,
    template_id INTEGER NOT NULL REFERENCES prompt_templates(id),
    number INTEGER NOT NULL,
    prompt_template TEXT NOT NULL,
    metadata TEXT NOT NULL,
    commit_message TEXT,
    created_at REAL NOT NULL,
    UNIQUE (template_id, number)
);
CREATE TABLE release_labels (
    template_id INTEGER NOT NULL REFERENCES prompt_templates(id),
    label TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES prompt_versions(id),
    PRIMARY KEY (template_id, label)
);
CREATE INDEX release_labels_version ON release_labels (version_id);
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    client_request_id TEXT,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    function_name TEXT NOT NULL,
    api_type TEXT,
    prompt_id INTEGER,
    prompt_version INTEGER,
    prompt_name TEXT,
    input_variables TEXT,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    group_id INTEGER,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    price REAL NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    score INTEGER,
    body TEXT NOT NULL,
    blueprint TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX requests_client_id ON requests (workspace_id, client_request_id);
CREATE INDEX requests_prompt_name ON requests (workspace_id, prompt_name, id);
CREATE TABLE request_scores (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    name TEXT NOT NULL,
    score INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (request_id, name)
);
CREATE TABLE request_metadata (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (request_id, key)
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    created_at REAL NOT NULL
);
CREATE TABLE request_groups (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    group_id INTEGER NOT NULL REFERENCES groups(id),
    PRIMARY KEY (request_id, group_id)
);
CREATE TABLE track_calls (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    client_call_id TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(id),
    PRIMARY KEY (workspace_id, client_call_id)
);
"""

# The dashboard: a price table per workspace (USD per million tokens), and time-range reads.
_V2_PRICES = """
CREATE TABLE model_prices (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    model TEXT NOT NULL,
    input_per_million REAL NOT NULL,
    output_per_million REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (workspace_id, model)
);
CREATE INDEX requests_start_time ON requests (workspace_id, start_time);
"""

# Workflows: versions with labels, executions and per-node results (store/_workflows.py).
_V3_WORKFLOWS = _workflows.MIGRATION

MIGRATIONS: tuple[str, ...] = (_V1, _V2_PRICES, _V3_WORKFLOWS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest schema; returns the version it is at.

    Runs in one transaction, so a crash mid-migration leaves the old schema intact.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"the database is at schema version {current}, newer than this promptrun "
                f"understands ({len(MIGRATIONS)}); upgrade promptrun or use another --db"
            )
        for number in range(current + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
