"""Registry SQL for PostgreSQL: resolve a template version, list templates, publish.

The same rules as :mod:`promptrun.server.store._templates` (read its docstring), on an asyncpg
connection. A publish locks its template's row, so two processes publishing the same template
at once get consecutive version numbers instead of a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from promptrun.server.store._pg_db import Conn
from promptrun.server.store._templates import _decode, _json, _matches
from promptrun.server.store.base import NewVersion, NotFoundError, TemplateVersion

__all__ = ["list_templates", "publish", "select_version"]

_VERSION_COLUMNS = "v.id, v.number, v.prompt_template, v.metadata, v.commit_message"


async def _labels(conn: Conn, version_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT label FROM release_labels WHERE version_id = $1 ORDER BY label", version_id
    )
    return [row[0] for row in rows]


async def _version(
    conn: Conn, template: tuple[int, str, str], row: Sequence[Any]
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
        release_labels=await _labels(conn, version_id),
    )


async def select_version(
    conn: Conn,
    workspace: int,
    name: str,
    *,
    version: int | None = None,
    label: str | None = None,
    metadata_filters: Mapping[str, Any] | None = None,
) -> TemplateVersion:
    """The version a fetch asks for; raises NotFoundError."""
    template = await conn.fetchrow(
        "SELECT id, name, tags FROM prompt_templates WHERE workspace_id = $1 AND name = $2",
        workspace,
        name,
    )
    if template is None:
        raise NotFoundError(
            f"prompt template {name!r} not found in this workspace; "
            "publish it first (POST /rest/prompt-templates)"
        )
    template_id = template[0]
    base = f"SELECT {_VERSION_COLUMNS} FROM prompt_versions v WHERE v.template_id = $1"
    row: asyncpg.Record | None
    if version is not None:
        row = await conn.fetchrow(f"{base} AND v.number = $2", template_id, version)
        if row is None:
            latest = await conn.fetchval(
                "SELECT MAX(number) FROM prompt_versions WHERE template_id = $1", template_id
            )
            raise NotFoundError(
                f"prompt template {name!r} has no version {version}; versions are 1..{latest}"
            )
    elif label is not None:
        row = await conn.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM release_labels l "
            "JOIN prompt_versions v ON v.id = l.version_id "
            "WHERE l.template_id = $1 AND l.label = $2",
            template_id,
            label,
        )
        if row is None:
            known = await conn.fetch(
                "SELECT label FROM release_labels WHERE template_id = $1 ORDER BY label",
                template_id,
            )
            names = ", ".join(repr(r[0]) for r in known) or "none"
            raise NotFoundError(
                f"prompt template {name!r} has no release label {label!r}; its labels: {names}"
            )
    else:
        row = None
        if metadata_filters:
            for candidate in await conn.fetch(f"{base} ORDER BY v.number DESC", template_id):
                if _matches(_decode(candidate[3]), metadata_filters):
                    row = candidate
                    break
        if row is None:
            row = await conn.fetchrow(f"{base} ORDER BY v.number DESC LIMIT 1", template_id)
    assert row is not None  # a template always has a version: publish creates both
    return await _version(conn, (template[0], template[1], template[2]), tuple(row))


async def list_templates(
    conn: Conn, workspace: int, *, page: int, per_page: int, label: str | None
) -> tuple[list[TemplateVersion], int]:
    """One page of templates, oldest first: each at its latest version, or at ``label``."""
    if label is None:
        join = (
            "JOIN prompt_versions v ON v.template_id = t.id AND v.number = "
            "(SELECT MAX(number) FROM prompt_versions WHERE template_id = t.id)"
        )
        where = "t.workspace_id = $1"
        args: tuple[Any, ...] = (workspace,)
    else:
        join = (
            "JOIN release_labels l ON l.template_id = t.id AND l.label = $2 "
            "JOIN prompt_versions v ON v.id = l.version_id"
        )
        where = "t.workspace_id = $1"
        args = (workspace, label)
    total = await conn.fetchval(
        f"SELECT COUNT(*) FROM prompt_templates t {join} WHERE {where}", *args
    )
    n = len(args)
    rows = await conn.fetch(
        f"SELECT t.id, t.name, t.tags, {_VERSION_COLUMNS} FROM prompt_templates t {join} "
        f"WHERE {where} ORDER BY t.id LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        per_page,
        (page - 1) * per_page,
    )
    return [await _version(conn, (r[0], r[1], r[2]), list(r)[3:]) for r in rows], int(total)


async def publish(conn: Conn, workspace: int, new: NewVersion, now: float) -> TemplateVersion:
    """Append version N+1 (creating the template if new) and move the labels to it.

    Runs inside the caller's transaction; the upsert locks the template row until it ends.
    """
    template_id, tags = await conn.fetchrow(
        "INSERT INTO prompt_templates (workspace_id, name, tags, folder_id, created_at) "
        "VALUES ($1, $2, COALESCE($3, '[]'), $4, $5) "
        "ON CONFLICT (workspace_id, name) DO UPDATE "
        "SET tags = COALESCE($3, prompt_templates.tags) RETURNING id, tags",
        workspace,
        new.prompt_name,
        None if new.tags is None else _json(new.tags),
        new.folder_id,
        now,
    )  # type: ignore[misc]  # fetchrow of an upsert with RETURNING always has a row
    number = await conn.fetchval(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM prompt_versions WHERE template_id = $1",
        template_id,
    )
    prompt_template = _json(new.prompt_template)
    metadata = _json(new.metadata)
    version_id = await conn.fetchval(
        "INSERT INTO prompt_versions "
        "(template_id, number, prompt_template, metadata, commit_message, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        template_id,
        number,
        prompt_template,
        metadata,
        new.commit_message,
        now,
    )
    if new.release_labels:
        await conn.execute(
            "INSERT INTO release_labels (template_id, label, version_id) "
            "SELECT $1, label, $3 FROM unnest($2::text[]) AS label "
            "ON CONFLICT (template_id, label) DO UPDATE SET version_id = excluded.version_id",
            template_id,
            sorted(set(new.release_labels)),
            version_id,
        )
    return await _version(
        conn,
        (template_id, new.prompt_name, tags),
        (version_id, number, prompt_template, metadata, new.commit_message),
    )
