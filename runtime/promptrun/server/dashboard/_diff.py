"""Line diffs between two template versions, as rows a template renders into a table."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DiffRow", "diff_rows", "version_text"]

RowKind = Literal["same", "removed", "added", "gap"]


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One line of a unified diff: ``old``/``new`` are line numbers (None where absent)."""

    kind: RowKind
    old: int | None
    new: int | None
    text: str


def version_text(prompt_template: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    """A version as the lines a person compares: the template, then its metadata, as JSON."""
    document = {"prompt_template": prompt_template, "metadata": metadata}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def diff_rows(old: list[str], new: list[str], *, context: int = 3) -> list[DiffRow]:
    """The changed lines with ``context`` lines around them; a ``gap`` row between hunks."""
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    rows: list[DiffRow] = []
    for group in matcher.get_grouped_opcodes(context):
        if rows:
            rows.append(DiffRow("gap", None, None, "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(
                    DiffRow("same", i + 1, j + 1, old[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                )
                continue
            rows.extend(DiffRow("removed", i + 1, None, old[i]) for i in range(i1, i2))
            rows.extend(DiffRow("added", None, j + 1, new[j]) for j in range(j1, j2))
    return rows
