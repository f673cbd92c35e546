"""The shapes of what the clients return, for type checkers: TypedDicts over plain dicts.

At run time every result is the plain ``dict`` it always was; these names only tell
``mypy``/``pyright`` which keys it has, so ``result["request_id"]`` type-checks and
``result["requestid"]`` does not. ``prompt_template``, ``metadata`` and ``llm_kwargs`` stay
``dict[str, Any]``: their contents depend on the template type and the provider.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = [
    "GetTemplateResult",
    "LogRequestResult",
    "PromptBlueprint",
    "PublishResult",
    "RunResult",
    "StreamItem",
    "TemplateListItem",
    "WorkflowNodeResult",
]


class PromptBlueprint(TypedDict):
    """A conversation with its model: ``prompt_template`` (``{"type": "chat", "messages":
    [...]}`` or a completion ``{"type": "completion", "content": [...]}``) and ``metadata``
    (``{"model": {"provider", "name", "parameters"}}``)."""

    prompt_template: dict[str, Any]
    metadata: dict[str, Any]


class RunResult(TypedDict):
    """What ``run()`` returns: the request id, the provider SDK's own response object, and
    the blueprint whose last message is the answer."""

    request_id: str | int
    """``req_...``, made on the client; the server's integer id with ``inline_logging=True``."""
    raw_response: Any
    prompt_blueprint: PromptBlueprint


class StreamItem(TypedDict):
    """One item of ``run(..., stream=True)``: a provider chunk and the answer so far.

    ``request_id`` is None on every item but the last.
    """

    request_id: str | int | None
    raw_response: Any
    prompt_blueprint: PromptBlueprint


class _TemplateVersion(TypedDict):
    id: int
    prompt_name: str
    version: int
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    provider_base_url: NotRequired[dict[str, Any] | None]
    commit_message: NotRequired[str | None]
    tags: NotRequired[list[str]]
    release_labels: NotRequired[list[str]]
    snippets: NotRequired[list[Any]]


class TemplateListItem(_TemplateVersion):
    """One item of ``templates.all()``: a template's version as stored."""


class GetTemplateResult(_TemplateVersion):
    """What ``templates.get()`` returns: a version, with the provider kwargs built from it
    (``None`` when the template names no model)."""

    llm_kwargs: dict[str, Any] | None


class PublishResult(TypedDict):
    """What ``templates.publish()`` returns: the new version as stored."""

    id: int
    prompt_name: str
    prompt_version_id: int
    version_number: int
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    commit_message: str | None
    tags: list[str]
    release_labels: list[str]


class LogRequestResult(TypedDict):
    """What ``log_request()`` returns: the request's id (``req_...``, or the server's integer
    with ``inline_logging=True``) and the blueprint the server stores."""

    id: str | int
    request_id: str | int
    prompt_version: PromptBlueprint


class WorkflowNodeResult(TypedDict):
    """One node's outcome in ``run_workflow(..., return_all_outputs=True)``."""

    status: str
    value: Any
    error_message: str | None
    raw_error_message: str | None
    is_output_node: bool
