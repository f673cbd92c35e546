"""The prompt registry: resolve a template version, list templates, publish a version.

How a version is chosen (:func:`select_version`):

1. ``version`` given: that version number; ``label`` given: the version the label points at.
2. Neither given: the latest version, unless ``metadata_filters`` are given, in which case the
   newest version whose metadata has every filter key with an equal value wins (values are
   compared as text: strings as they are, anything else as JSON, so ``1`` matches ``"1"``
   and ``true`` matches ``"true"``). If no version matches, the filters are ignored and the
   latest version is used: the peer SDK sends a ``run()``'s metadata as filters, and that
   metadata is usually about the request, not about the template.
3. With ``version`` or ``label`` the filters are ignored.

A publish upserts its template's row first, which on PostgreSQL locks it until the
transaction ends: two processes publishing one template at once get consecutive numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import msgspec

from promptrun.server.store.base import (
    NewVersion,
    NotFoundError,
    TemplateDetail,
    TemplateSummary,
    TemplateVersion,
    VersionInfo,
)
from promptrun.server.store.queries._sql import (
    Op,
    Row,
    executemany,
    fetch,
    fetchrow,
    fetchval,
)
from promptrun.server.store.queries._versions import labels_of_version, pick_version
from promptrun.server.store.queries.dialect import Dialect

__all__ = [
    "json_text",
    "list_templates",
    "metadata_matches",
    "publish",
    "select_version",
    "template_detail",
    "template_summaries",
]

_decode = msgspec.json.decode
_VERSION_COLUMNS = "v.id, v.number, v.prompt_template, v.metadata, v.commit_message"


def json_text(value: Any) -> str:
    """JSON as text (str, not bytes: sqlite3 stores bytes as BLOB and the columns are TEXT)."""
    return msgspec.json.encode(value).decode()


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value)


def metadata_matches(metadata: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Whether a version's ``metadata`` has every filter key with an equal value (as text)."""
    return all(
        key in metadata and _as_text(metadata[key]) == _as_text(want)
        for key, want in filters.items()
    )


def _missing(name: str) -> NotFoundError:
    return NotFoundError(
        f"prompt template {name!r} not found in this workspace; "
        "publish it first (POST /rest/prompt-templates)"
    )


def _version(d: Dialect, template: Row, row: Row) -> Op[TemplateVersion]:
    template_id, name, tags = template
    version_id, number, prompt_template, metadata, commit_message = row
    labels = yield from labels_of_version("template", version_id)
    return TemplateVersion(
        template_id=template_id,
        prompt_name=name,
        tags=_decode(tags),
        version_id=version_id,
        number=number,
        prompt_template=_decode(prompt_template),
        metadata=_decode(metadata),
        commit_message=commit_message,
        release_labels=labels,
    )


def select_version(
    d: Dialect,
    workspace: int,
    name: str,
    *,
    version: int | None = None,
    label: str | None = None,
    metadata_filters: Mapping[str, Any] | None = None,
) -> Op[TemplateVersion]:
    """The version a fetch asks for (rules in the module docstring); raises NotFoundError."""
    if not d.text_ok(name):
        raise _missing(name)
    template = yield from fetchrow(
        "SELECT id, name, tags FROM prompt_templates WHERE workspace_id = $1 AND name = $2",
        workspace,
        name,
    )
    if template is None:
        raise _missing(name)
    template_id = template[0]
    base = f"SELECT {_VERSION_COLUMNS} FROM prompt_versions v WHERE v.template_id = $1"
    row = yield from pick_version(d, "template", template_id, name, version=version, label=label)
    if version is None and label is None:
        if metadata_filters:
            for candidate in (yield from fetch(f"{base} ORDER BY v.number DESC", template_id)):
                if metadata_matches(_decode(candidate[3]), metadata_filters):
                    row = candidate
                    break
        if row is None:
            row = yield from fetchrow(f"{base} ORDER BY v.number DESC LIMIT 1", template_id)
    assert row is not None  # a template always has a version: publish creates both
    return (yield from _version(d, template, row))


def list_templates(
    d: Dialect, workspace: int, *, page: int, per_page: int, label: str | None
) -> Op[tuple[list[TemplateVersion], int]]:
    """One page of templates, oldest first: each at its latest version, or at ``label``."""
    if label is None:
        join = (
            "JOIN prompt_versions v ON v.template_id = t.id AND v.number = "
            "(SELECT MAX(number) FROM prompt_versions WHERE template_id = t.id)"
        )
        args: tuple[Any, ...] = (workspace,)
    elif not d.text_ok(label):
        return [], 0
    else:
        join = (
            "JOIN release_labels l ON l.template_id = t.id AND l.label = $2 "
            "JOIN prompt_versions v ON v.id = l.version_id"
        )
        args = (workspace, label)
    total = yield from fetchval(
        f"SELECT COUNT(*) FROM prompt_templates t {join} WHERE t.workspace_id = $1", *args
    )
    n = len(args)
    rows = yield from fetch(
        f"SELECT t.id, t.name, t.tags, {_VERSION_COLUMNS} FROM prompt_templates t {join} "
        f"WHERE t.workspace_id = $1 ORDER BY t.id LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        per_page,
        (page - 1) * per_page,
    )
    found: list[TemplateVersion] = []
    for r in rows:
        found.append((yield from _version(d, r[:3], r[3:])))
    return found, int(total)


def _canonical(value: Any) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def _same_content(latest: Row, new: NewVersion) -> bool:
    """The latest version holds exactly this template and metadata (key order aside; ``1``
    and ``1.0`` differ, as they do to a provider)."""
    return _canonical(_decode(latest[2])) == _canonical(new.prompt_template) and _canonical(
        _decode(latest[3])
    ) == _canonical(new.metadata)


def publish(d: Dialect, workspace: int, new: NewVersion, now: float) -> Op[TemplateVersion]:
    """Append version N+1 (creating the template if new) and move the labels to it.

    Idempotent: when the latest version already holds this template and metadata and already
    has every label asked for, nothing is created and that version comes back marked
    ``unchanged`` (its commit message stays; the template's tags are updated as always).
    """
    d.check_text(new.prompt_name, new.commit_message, *new.release_labels)
    template = yield from fetchrow(
        "INSERT INTO prompt_templates (workspace_id, name, tags, folder_id, created_at) "
        "VALUES ($1, $2, COALESCE($3, '[]'), $4, $5) "
        "ON CONFLICT (workspace_id, name) DO UPDATE "
        "SET tags = COALESCE($3, prompt_templates.tags) RETURNING id, name, tags",
        workspace,
        new.prompt_name,
        None if new.tags is None else json_text(new.tags),
        new.folder_id,
        now,
    )
    assert template is not None  # an upsert with RETURNING always has its row
    template_id = template[0]
    latest = yield from fetchrow(
        f"SELECT {_VERSION_COLUMNS} FROM prompt_versions v WHERE v.template_id = $1 "
        "ORDER BY v.number DESC LIMIT 1",
        template_id,
    )
    if latest is not None and _same_content(latest, new):
        labelled = yield from fetch(
            "SELECT label FROM release_labels WHERE version_id = $1", latest[0]
        )
        if set(new.release_labels) <= {r[0] for r in labelled}:
            found = yield from _version(d, template, latest)
            return dataclasses.replace(found, unchanged=True)
    number = 1 if latest is None else int(latest[1]) + 1
    prompt_template = json_text(new.prompt_template)
    metadata = json_text(new.metadata)
    version_id = yield from fetchval(
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
    yield from executemany(
        "INSERT INTO release_labels (template_id, label, version_id, created_at) "
        "VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (template_id, label) DO UPDATE SET version_id = excluded.version_id",
        [(template_id, label, version_id, now) for label in sorted(set(new.release_labels))],
    )
    row = (version_id, number, prompt_template, metadata, new.commit_message)
    return (yield from _version(d, template, row))


def template_summaries(
    d: Dialect, workspace: int, *, limit: int, offset: int
) -> Op[tuple[list[TemplateSummary], int]]:
    """Templates by name, each with its latest version number, version count and labels."""
    total = yield from fetchval(
        "SELECT COUNT(*) FROM prompt_templates WHERE workspace_id = $1", workspace
    )
    rows = yield from fetch(
        "SELECT t.id, t.name, t.tags, MAX(v.number), COUNT(v.id), MAX(v.created_at) "
        "FROM prompt_templates t JOIN prompt_versions v ON v.template_id = t.id "
        f"WHERE t.workspace_id = $1 GROUP BY t.id ORDER BY t.name{d.binary} "
        "LIMIT $2 OFFSET $3",
        workspace,
        limit,
        offset,
    )
    labels: dict[int, list[str]] = {}
    if rows:
        for template_id, label in (
            yield from fetch(
                "SELECT template_id, label FROM release_labels "
                f"WHERE template_id {d.any_of('$1', 'int8')} ORDER BY label{d.binary}",
                d.array(r[0] for r in rows),
            )
        ):
            labels.setdefault(template_id, []).append(label)
    return [
        TemplateSummary(
            name=name,
            latest_version=int(latest),
            versions=int(versions),
            labels=labels.get(template_id, []),
            tags=_decode(tags),
            updated_at=float(updated),
        )
        for template_id, name, tags, latest, versions, updated in rows
    ], int(total)


def template_detail(d: Dialect, workspace: int, name: str) -> Op[TemplateDetail]:
    """A template's versions, newest first, each with its commit message and labels."""
    found = None
    if d.text_ok(name):
        found = yield from fetchrow(
            "SELECT id, tags, created_at FROM prompt_templates "
            "WHERE workspace_id = $1 AND name = $2",
            workspace,
            name,
        )
    if found is None:
        raise NotFoundError(f"prompt template {name!r} not found in this workspace")
    template_id, tags, created_at = found
    labels: dict[int, list[str]] = {}
    for label, version_id in (
        yield from fetch(
            "SELECT label, version_id FROM release_labels WHERE template_id = $1 "
            f"ORDER BY label{d.binary}",
            template_id,
        )
    ):
        labels.setdefault(version_id, []).append(label)
    versions = yield from fetch(
        "SELECT id, number, commit_message, created_at FROM prompt_versions "
        "WHERE template_id = $1 ORDER BY number DESC",
        template_id,
    )
    return TemplateDetail(
        template_id=template_id,
        name=name,
        tags=_decode(tags),
        created_at=created_at,
        versions=[
            VersionInfo(
                number=number,
                commit_message=message,
                created_at=created,
                labels=labels.get(version_id, []),
            )
            for version_id, number, message, created in versions
        ],
    )
