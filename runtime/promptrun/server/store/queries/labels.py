"""Release labels on their own: list a template's, put one on a version, move it, remove it.

A publish moves the labels it names to the new version (``templates.publish``); these move a
label without publishing, which is how ``prod`` is promoted to a tested version or rolled back
to an older one. A template is named by its name or by its id (a name made only of digits is
tried as a name first, then as an id, as workflows are). A label is identified by its id,
as the PromptLayer API does (``PATCH /prompt-labels/{id}``), or by template and name.
"""

from __future__ import annotations

from promptrun.server.store.base import LabelMove, NotFoundError, TemplateLabel, TemplateLabels
from promptrun.server.store.queries._sql import Op, Row, execute, fetch, fetchrow, fetchval
from promptrun.server.store.queries.dialect import Dialect
from promptrun.server.store.queries.requests import in_int64

__all__ = ["delete_label", "move_label", "set_label", "template_labels"]

_COLUMNS = "l.id, l.label, l.created_at, v.id, v.number"
_FROM = "FROM release_labels l JOIN prompt_versions v ON v.id = l.version_id "
_LABEL = f"SELECT {_COLUMNS} {_FROM}"


def _missing(ref: int | str) -> NotFoundError:
    return NotFoundError(f"prompt template {ref!r} not found in this workspace")


def _template(d: Dialect, workspace: int, ref: int | str) -> Op[tuple[int, str]]:
    """(id, name) of the template ``ref`` names, in this workspace."""
    row = None
    if isinstance(ref, str):
        if d.text_ok(ref):
            row = yield from fetchrow(
                "SELECT id, name FROM prompt_templates WHERE workspace_id = $1 AND name = $2",
                workspace,
                ref,
            )
        if row is None and ref.isascii() and ref.isdigit() and len(ref) <= 18:
            ref = int(ref)
    if row is None and isinstance(ref, int) and in_int64(ref):
        row = yield from fetchrow(
            "SELECT id, name FROM prompt_templates WHERE workspace_id = $1 AND id = $2",
            workspace,
            ref,
        )
    if row is None:
        raise _missing(ref)
    return int(row[0]), str(row[1])


def _version_id(template_id: int, name: str, number: int) -> Op[int]:
    found = None
    if in_int64(number):
        found = yield from fetchval(
            "SELECT id FROM prompt_versions WHERE template_id = $1 AND number = $2",
            template_id,
            number,
        )
    if found is None:
        last = yield from fetchval(
            "SELECT MAX(number) FROM prompt_versions WHERE template_id = $1", template_id
        )
        raise NotFoundError(
            f"prompt template {name!r} has no version {number}; versions are 1..{last}"
        )
    return int(found)


def _label(row: Row) -> TemplateLabel:
    label_id, label, created_at, version_id, number = row
    return TemplateLabel(
        id=int(label_id),
        label=str(label),
        version_id=int(version_id),
        number=int(number),
        created_at=float(created_at),
    )


def template_labels(d: Dialect, workspace: int, ref: int | str) -> Op[TemplateLabels]:
    """Every release label of a template, by name (code-point order)."""
    template_id, name = yield from _template(d, workspace, ref)
    rows = yield from fetch(f"{_LABEL}WHERE l.template_id = $1", template_id)
    labels = sorted((_label(r) for r in rows), key=lambda label: label.label)
    return TemplateLabels(template_id=template_id, prompt_name=name, labels=labels)


def _moved(template_id: int, name: str, label_id: int, previous: int | None) -> Op[LabelMove]:
    row = yield from fetchrow(f"{_LABEL}WHERE l.id = $1", label_id)
    assert row is not None  # written in this transaction
    return LabelMove(
        template_id=template_id, prompt_name=name, label=_label(row), previous_number=previous
    )


def set_label(
    d: Dialect, workspace: int, ref: int | str, label: str, number: int, now: float
) -> Op[LabelMove]:
    """Put ``label`` on version ``number``: created if new, else moved from where it was."""
    d.check_text(label)
    template_id, name = yield from _template(d, workspace, ref)
    # Lock the template's row (PostgreSQL), so a publish moving this label waits for us.
    yield from execute("UPDATE prompt_templates SET id = id WHERE id = $1", template_id)
    version_id = yield from _version_id(template_id, name, number)
    before = yield from fetchrow(
        f"{_LABEL}WHERE l.template_id = $1 AND l.label = $2", template_id, label
    )
    label_id = yield from fetchval(
        "INSERT INTO release_labels (template_id, label, version_id, created_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (template_id, label) "
        "DO UPDATE SET version_id = excluded.version_id RETURNING id",
        template_id,
        label,
        version_id,
        now,
    )
    previous = None if before is None else int(before[4])
    return (yield from _moved(template_id, name, int(label_id), previous))


def _owned_label(d: Dialect, workspace: int, label_id: int) -> Op[tuple[int, str, Row]]:
    row = None
    if in_int64(label_id):
        row = yield from fetchrow(
            f"SELECT t.id, t.name, {_COLUMNS} {_FROM}"
            "JOIN prompt_templates t ON t.id = l.template_id "
            "WHERE l.id = $1 AND t.workspace_id = $2",
            label_id,
            workspace,
        )
    if row is None:
        raise NotFoundError(f"release label {label_id} not found in this workspace")
    return int(row[0]), str(row[1]), row[2:]


def move_label(d: Dialect, workspace: int, label_id: int, number: int) -> Op[LabelMove]:
    """Move the label with this id to version ``number`` of its template."""
    template_id, name, _ = yield from _owned_label(d, workspace, label_id)
    yield from execute("UPDATE prompt_templates SET id = id WHERE id = $1", template_id)
    _, _, row = yield from _owned_label(d, workspace, label_id)  # as it is now we hold the lock
    version_id = yield from _version_id(template_id, name, number)
    yield from execute(
        "UPDATE release_labels SET version_id = $1 WHERE id = $2", version_id, label_id
    )
    return (yield from _moved(template_id, name, label_id, int(row[4])))


def delete_label(d: Dialect, workspace: int, label_id: int) -> Op[LabelMove]:
    """Remove the label with this id; the answer says where it was."""
    template_id, name, row = yield from _owned_label(d, workspace, label_id)
    yield from execute("DELETE FROM release_labels WHERE id = $1", label_id)
    return LabelMove(
        template_id=template_id,
        prompt_name=name,
        label=_label(row),
        previous_number=int(row[4]),
        removed=True,
    )
