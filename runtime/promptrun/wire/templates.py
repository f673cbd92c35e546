"""Bodies of the prompt-registry endpoints: fetch a template, publish a version.

The server checks the type of every key it knows (a 400 naming the key) and ignores keys it
does not know, as the hosted API does, so a body from a newer PromptLayer SDK with one more
key is still served. A client may encode them with ``omit_defaults`` so only what was given
goes on the wire. Every body also accepts
``api_key``, because the peer SDK puts the key in the body for some endpoints.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import msgspec

from promptrun.wire._limits import MAX_NAME, Id, Key, Label, Labels, Name, NonEmptyName, Tags, Text

__all__ = [
    "GetTemplateBody",
    "PublishBody",
    "PublishTemplatePart",
    "PublishVersionPart",
    "template_name_problem",
]


def template_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a template (or a workflow, fetched the same way), or None.

    A template is fetched by name in the URL (``/prompt-templates/{name}``, percent-encoded),
    so a name must survive that: ``"."`` and ``".."`` are dot segments that every RFC 3986
    client (``requests``, ``httpx``, browsers) removes from the path before sending, and a
    control character (a newline, a tab, NUL, DEL...) is no part of a name anyone types. Both
    would publish a template that no client could fetch.
    """
    if not name.strip():
        return f"must be 1 to {MAX_NAME} characters, not blank"
    if len(name) > MAX_NAME:
        return f"must be 1 to {MAX_NAME} characters, not {len(name)}"
    if name in (".", ".."):
        return (
            f"cannot be {name!r}: HTTP clients remove dot segments from URLs, so no client "
            "could fetch it by name; choose another name"
        )
    for index, char in enumerate(name):
        if unicodedata.category(char) == "Cc":
            return (
                f"must not contain control characters ({char!r} at position {index}): a "
                "name is fetched in a URL, and such a name cannot be fetched"
            )
        if char in _BIDI_CONTROLS:
            return (
                f"must not contain bidirectional controls ({char!r} at position {index}): "
                "they reorder how a name is shown, so one name could pose as another"
            )
    return None


# Unicode's explicit directional formatting characters (UAX #9): embeddings, overrides,
# isolates and the marks. Joiners (U+200C, U+200D) are not among them: scripts and emoji
# sequences need those.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class GetTemplateBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /prompt-templates/{name}``: which version to pick and how to render it."""

    api_key: Key | None = None
    version: Id | None = None
    label: Label | None = None
    provider: Name | None = None
    model: Name | None = None
    input_variables: dict[str, Any] | None = None
    metadata_filters: dict[str, Any] | None = None
    model_parameter_overrides: dict[str, Any] | None = None
    skip_input_variable_rendering: bool = False


class PublishTemplatePart(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The ``prompt_template`` half of a publish body: the template's identity.

    The peer SDK sends its whole publish dict here and again under ``prompt_version``, so the
    version's keys are accepted (and ignored) here too.
    """

    prompt_name: NonEmptyName
    tags: Tags | None = None
    folder_id: Id | None = None
    prompt_template: dict[str, Any] | None = None
    commit_message: Text | None = None
    metadata: dict[str, Any] | None = None
    release_labels: Labels | None = None
    parent_version_id: Id | None = None


class PublishVersionPart(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The ``prompt_version`` half of a publish body: the new version's content."""

    prompt_template: dict[str, Any]
    commit_message: Text | None = None
    metadata: dict[str, Any] | None = None
    prompt_name: Name | None = None
    tags: Tags | None = None
    folder_id: Id | None = None
    release_labels: Labels | None = None
    parent_version_id: Id | None = None


class PublishBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``POST /rest/prompt-templates``: append a version, creating the template if new."""

    prompt_template: PublishTemplatePart
    prompt_version: PublishVersionPart
    release_labels: Labels | None = None
    api_key: Key | None = None
