"""What the REST endpoints answer, as Structs: the response half of the OpenAPI description.

The handlers build their answers directly; these describe them for clients and for the
schema checks in the test suite, which call every endpoint and compare. Unknown fields are
allowed, so an answer may grow without breaking a client that reads these.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "ErrorBody",
    "GroupCreated",
    "Health",
    "LoggedRequest",
    "Published",
    "RequestDetail",
    "RequestList",
    "RequestSummary",
    "Success",
    "TemplateList",
    "TemplateView",
    "TrackedRequest",
]


class ErrorBody(msgspec.Struct):
    """Every 4xx and 5xx: what went wrong and, where it can, what to do instead."""

    success: Literal[False]
    message: str


class Health(msgspec.Struct):
    status: Literal["ok"]


class Success(msgspec.Struct):
    success: bool


class TemplateView(msgspec.Struct, kw_only=True):
    """One template version; ``llm_kwargs`` only when fetched for a provider."""

    id: int
    prompt_name: str
    version: int
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    provider_base_url: str | None
    tags: list[str]
    commit_message: str | None
    release_labels: list[str]
    snippets: list[Any]
    llm_kwargs: dict[str, Any] | None = None
    #: Only when fetched with ``metadata_filters`` (and no version or label): whether a version
    #: matched them; when none did, this is the latest version.
    metadata_filters_matched: bool | None = None


class TemplateList(msgspec.Struct):
    items: list[TemplateView]
    page: int
    per_page: int
    total: int


class Published(msgspec.Struct, kw_only=True):
    id: int
    prompt_name: str
    prompt_version_id: int
    version_number: int
    tags: list[str]
    release_labels: list[str]
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    commit_message: str | None
    unchanged: bool = False  # the latest version already held this: nothing was created


class TrackedRequest(msgspec.Struct):
    success: bool
    request_id: int
    prompt_blueprint: dict[str, Any]


class _PromptVersion(msgspec.Struct):
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]


class LoggedRequest(msgspec.Struct):
    id: int
    request_id: int
    prompt_version: _PromptVersion


class GroupCreated(msgspec.Struct):
    success: bool
    id: int


class RequestSummary(msgspec.Struct, kw_only=True):
    """A logged request without its body and blueprint."""

    id: int
    client_request_id: str | None
    kind: Literal["track", "log"]
    provider: str
    model: str
    function_name: str
    api_type: str | None
    prompt_id: int | None
    prompt_version: int | None
    prompt_name: str | None
    input_variables: Any
    tags: Any
    metadata: Any
    group_id: int | None
    request_start_time: float
    request_end_time: float
    input_tokens: int
    output_tokens: int
    price: float
    status: str
    error_type: str | None
    error_message: str | None
    score: int | None
    created_at: float
    span_id: str | None = None  # the trace span the request was made in (its client said)
    #: True when ``metadata`` holds only part of what is stored: a request stored before the
    #: server bounded metadata (at most 1,000 keys), read back in part.
    metadata_truncated: bool = False
    #: ``price`` when it was logged with one, else the tokens at the workspace's price
    #: table (``cost_estimated``); None for a model with no price.
    cost: float | None
    cost_estimated: bool


class RequestList(msgspec.Struct):
    items: list[RequestSummary]
    total: int


class RequestDetail(RequestSummary, kw_only=True):
    """Everything stored about one request, tracked scores, metadata and groups included."""

    body: dict[str, Any]
    prompt_blueprint: dict[str, Any]
    scores: dict[str, int]
    groups: list[int]
