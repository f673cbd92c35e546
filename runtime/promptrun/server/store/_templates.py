"""Registry SQL: resolve a template version, list templates, publish a version.

Functions of a connection, so the writer (publish, ``track.prompt``) and the readers share
them. Parameterised SQL only.

How a version is chosen (``select_version``):

1. ``version`` given: that version number; ``label`` given: the version the label points at.
2. Neither given: the latest version, unless ``metadata_filters`` are given, in which case the
   newest version whose metadata has every filter key with an equal value wins (values are
   compared as text: strings as they are, anything else as JSON, so ``1`` matches ``"1"``
   and ``true`` matches ``"true"``). If no version matches, the filters are ignored and the
   latest version is used: the peer SDK sends a ``run()``'s metadata as filters, and that
   metadata is usually about the request, not about the template.
3. With ``version`` or ``label`` the filters are ignored.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from promptrun.server.store.base import NewVersion, NotFoundError, TemplateVersion

__all__ = ["list_templates", "publish", "select_version"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

_VERSION_COLUMNS = "v.id, v.number, v.prompt_template, v.metadata, v.commit_message"


def _json(value: Any) -> str:
    # str, not bytes: sqlite3 stores bytes as BLOB and the columns are TEXT.
    return _encode(value).decode()


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _matches(metadata: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    return all(
        key in metadata and _as_text(metadata[key]) == _as_text(want)
        for key, want in filters.items()
    )


def _labels(conn: sqlite3.Connection, version_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT label FROM release_labels WHERE version_id = ? ORDER BY label", (version_id,)
    ).fetchall()
    return [row[0] for row in rows]


def _version(
    conn: sqlite3.Connection, template: tuple[int, str, str], row: tuple[Any, ...]
) -> TemplateVersion:
    template_id, name, tags = template
    version_id, number, prompt_template, metadata, commit_message = row
    return TemplateVersion(
        template_id=template_id,
        prompt_name=name,
        tags=_decode(tags),
        version_id=version_id,
        number=number,
        prompt_template=_decode(prompt_template),
        metadata=_decode(metadata),
        commit_message=commit_message,
        release_labels=_labels(conn, version_id),
    )


def select_version(
    conn: sqlite3.Connection,
    workspace: int,
    name: str,
    *,
    version: int | None = None,
    label: str | None = None,
    metadata_filters: Mapping[str, Any] | None = None,
) -> TemplateVersion:
    """The version a fetch asks for (rules in the module docstring); raises NotFoundError."""
    template = conn.execute(
        "SELECT id, name, tags FROM prompt_templates WHERE workspace_id = ? AND name = ?",
        (workspace, name),
    ).fetchone()
    if template is None:
        raise NotFoundError(
            f"prompt template {name!r} not found in this workspace; "
            "publish it first (POST /rest/prompt-templates)"
        )
    template_id = template[0]
    base = f"SELECT {_VERSION_COLUMNS} FROM prompt_versions v WHERE v.template_id = ?"
    if version is not None:
        row = conn.execute(f"{base} AND v.number = ?", (template_id, version)).fetchone()
        if row is None:
            latest = conn.execute(
                "SELECT MAX(number) FROM prompt_versions WHERE template_id = ?", (template_id,)
            ).fetchone()[0]
            raise NotFoundError(
                f"prompt template {name!r} has no version {version}; versions are 1..{latest}"
            )
    elif label is not None:
        row = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM release_labels l "
            "JOIN prompt_versions v ON v.id = l.version_id "
            "WHERE l.template_id = ? AND l.label = ?",
            (template_id, label),
        ).fetchone()
        if row is None:
            known = conn.execute(
                "SELECT label FROM release_labels WHERE template_id = ? ORDER BY label",
                (template_id,),
            ).fetchall()
            names = ", ".join(repr(r[0]) for r in known) or "none"
            raise NotFoundError(
                f"prompt template {name!r} has no release label {label!r}; its labels: {names}"
            )
    else:
        row = None
        if metadata_filters:
            for candidate in conn.execute(f"{base} ORDER BY v.number DESC", (template_id,)):
                if _matches(_decode(candidate[3]), metadata_filters):
                    row = candidate
                    break
        if row is None:
            row = conn.execute(f"{base} ORDER BY v.number DESC LIMIT 1", (template_id,)).fetchone()
    return _version(conn, template, row)


def list_templates(
    conn: sqlite3.Connection, workspace: int, *, page: int, per_page: int, label: str | None
) -> tuple[list[TemplateVersion], int]:
    """One page of templates, oldest first: each at its latest version, or at ``label``."""
    if label is None:
        join = (
            "JOIN prompt_versions v ON v.template_id = t.id AND v.number = "
            "(SELECT MAX(number) FROM prompt_versions WHERE template_id = t.id)"
        )
        args: tuple[Any, ...] = (workspace,)
    else:
        join = (
            "JOIN release_labels l ON l.template_id = t.id AND l.label = ? "
            "JOIN prompt_versions v ON v.id = l.version_id"
        )
        args = (label, workspace)
    total = conn.execute(
        f"SELECT COUNT(*) FROM prompt_templates t {join} WHERE t.workspace_id = ?", args
    ).fetchone()[0]
    rows = conn.execute(
        f"SELECT t.id, t.name, t.tags, {_VERSION_COLUMNS} FROM prompt_templates t {join} "
        "WHERE t.workspace_id = ? ORDER BY t.id LIMIT ? OFFSET ?",
        (*args, per_page, (page - 1) * per_page),
    ).fetchall()
    return [_version(conn, (r[0], r[1], r[2]), r[3:]) for r in rows], total


def publish(conn: sqlite3.Connection, workspace: int, new: NewVersion) -> TemplateVersion:
    """Append version N+1 (creating the template if new) and move the labels to it."""
    now = time.time()
    found = conn.execute(
        "SELECT id, tags FROM prompt_templates WHERE workspace_id = ? AND name = ?",
        (workspace, new.prompt_name),
    ).fetchone()
    if found is None:
        tags = _json(new.tags or [])
        template_id = conn.execute(
            "INSERT INTO prompt_templates (workspace_id, name, tags, folder_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (workspace, new.prompt_name, tags, new.folder_id, now),
        ).fetchone()[0]
    else:
        template_id, tags = found
        if new.tags is not None:
            tags = _json(new.tags)
            conn.execute("UPDATE prompt_templates SET tags = ? WHERE id = ?", (tags, template_id))
    number = conn.execute(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM prompt_versions WHERE template_id = ?",
        (template_id,),
    ).fetchone()[0]
    prompt_template = _json(new.prompt_template)
    metadata = _json(new.metadata)
    version_id = conn.execute(
        "INSERT INTO prompt_versions "
        "(template_id, number, prompt_template, metadata, commit_message, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (template_id, number, prompt_template, metadata, new.commit_message, now),
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO release_labels (template_id, label, version_id) VALUES (?, ?, ?) "
        "ON CONFLICT (template_id, label) DO UPDATE SET version_id = excluded.version_id",
        [(template_id, label, version_id) for label in new.release_labels],
    )
    return _version(
        conn,
        (template_id, new.prompt_name, tags),
        (version_id, number, prompt_template, metadata, new.commit_message),
    )
