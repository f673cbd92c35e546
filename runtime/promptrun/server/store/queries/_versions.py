"""Versions with release labels, as templates and workflows both have them: one set of rules.

``version`` given: that number, else a NotFoundError naming the numbers there are; ``label``
given: the version it points at, else a NotFoundError naming the labels there are. Labels
are listed in code-point order on both databases (sorted here, not by a collation).
"""

from __future__ import annotations

from typing import Literal

from promptrun.server.store.base import NotFoundError
from promptrun.server.store.queries._sql import Op, Row, fetch, fetchrow, fetchval
from promptrun.server.store.queries.dialect import Dialect

__all__ = ["Versioned", "labels_of_version", "pick_version"]

Versioned = Literal["template", "workflow"]
_NOUN = {"template": "prompt template", "workflow": "workflow"}
# Each kind's SQL; $1 is the template's or workflow's id. A version row is what the kind's
# module reads: templates (id, number, prompt_template, metadata, commit_message), workflows
# (id, number, definition, commit_message, created_at).
_SQL = {
    "template": {
        "number": "SELECT v.id, v.number, v.prompt_template, v.metadata, v.commit_message "
        "FROM prompt_versions v WHERE v.template_id = $1 AND v.number = $2",
        "label": "SELECT v.id, v.number, v.prompt_template, v.metadata, v.commit_message "
        "FROM release_labels l JOIN prompt_versions v ON v.id = l.version_id "
        "WHERE l.template_id = $1 AND l.label = $2",
        "last": "SELECT MAX(number) FROM prompt_versions WHERE template_id = $1",
        "labels": "SELECT label FROM release_labels WHERE template_id = $1",
        "version labels": "SELECT label FROM release_labels WHERE version_id = $1",
    },
    "workflow": {
        "number": "SELECT v.id, v.number, v.definition, v.commit_message, v.created_at "
        "FROM workflow_versions v WHERE v.workflow_id = $1 AND v.number = $2",
        "label": "SELECT v.id, v.number, v.definition, v.commit_message, v.created_at "
        "FROM workflow_labels l JOIN workflow_versions v ON v.id = l.version_id "
        "WHERE l.workflow_id = $1 AND l.label = $2",
        "last": "SELECT MAX(number) FROM workflow_versions WHERE workflow_id = $1",
        "labels": "SELECT label FROM workflow_labels WHERE workflow_id = $1",
        "version labels": "SELECT label FROM workflow_labels WHERE version_id = $1",
    },
}


def pick_version(
    d: Dialect,
    kind: Versioned,
    owner_id: int,
    name: str,
    *,
    version: int | None,
    label: str | None,
) -> Op[Row | None]:
    """The row of the version asked for by number or label; None when neither is given."""
    sql = _SQL[kind]
    row: Row | None = None
    if version is not None:
        row = yield from fetchrow(sql["number"], owner_id, version)
        if row is None:
            last = yield from fetchval(sql["last"], owner_id)
            raise NotFoundError(
                f"{_NOUN[kind]} {name!r} has no version {version}; versions are 1..{last}"
            )
    elif label is not None:
        if d.text_ok(label):
            row = yield from fetchrow(sql["label"], owner_id, label)
        if row is None:
            known = sorted(r[0] for r in (yield from fetch(sql["labels"], owner_id)))
            names = ", ".join(repr(known_label) for known_label in known) or "none"
            raise NotFoundError(
                f"{_NOUN[kind]} {name!r} has no release label {label!r}; its labels: {names}"
            )
    return row


def labels_of_version(kind: Versioned, version_id: int) -> Op[list[str]]:
    """The release labels on one version, in code-point order."""
    return sorted(r[0] for r in (yield from fetch(_SQL[kind]["version labels"], version_id)))
