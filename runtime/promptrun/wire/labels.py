"""Bodies and answers of the release-label endpoints, in the PromptLayer API's shape.

``GET /prompt-templates/{identifier}/labels`` lists a template's labels; ``POST
/prompts/{prompt_id}/label`` puts one on a version (creating it, or moving it when the template
already has it); ``PATCH /prompt-labels/{id}`` moves one; ``DELETE /prompt-labels/{id}``
removes one. None of them publishes. Answers carry PromptLayer's fields plus promptrun's
``prompt_name``, ``prompt_version_number`` and ``previous_version_number`` (where the label
was before; null for a new label), so a client can say what moved without a second call.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from promptrun.wire._limits import MAX_NAME, Id

__all__ = ["CreateLabelBody", "LabelListItem", "LabelView", "MoveLabelBody", "TemplateLabelList"]

LabelName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_NAME, description="a release label")
]
VersionNumber = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1, description="a version number")]


class CreateLabelBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /prompts/{prompt_id}/label``: put label ``name`` on a version."""

    prompt_version_number: VersionNumber
    name: LabelName


class MoveLabelBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /prompt-labels/{id}``: move the label to another version of its template."""

    prompt_version_number: VersionNumber


class LabelView(msgspec.Struct, kw_only=True):
    """A label where it is now (after a removal: where it was)."""

    id: Id
    name: str
    prompt_id: Id
    prompt_version_id: Id
    created_at: str  # ISO 8601, UTC
    prompt_name: str
    prompt_version_number: int
    previous_version_number: int | None
    removed: bool = False


class LabelListItem(msgspec.Struct, kw_only=True):
    release_label_id: Id
    release_label: str
    prompt_version_id: Id
    prompt_version_number: int


class TemplateLabelList(msgspec.Struct, kw_only=True):
    prompt_id: Id
    prompt_name: str
    release_labels: list[LabelListItem]
