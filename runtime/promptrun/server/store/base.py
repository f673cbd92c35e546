"""What the routes need from a store, and the plain records that cross that line.

A store is scoped by workspace on every call: ``workspace`` is the id the API key resolved to,
and an id that belongs to another workspace is reported as not found, never as forbidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from promptrun.wire.ingest import IngestResult

__all__ = [
    "NewVersion",
    "NotFoundError",
    "Rejected",
    "RequestRow",
    "Store",
    "StoreConfigError",
    "TemplateVersion",
    "TrackCall",
    "TrackEndpoint",
]

TrackEndpoint = Literal["metadata", "score", "prompt", "group"]


class NotFoundError(LookupError):
    """A template, version, label, request or group the workspace does not have."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreConfigError(RuntimeError):
    """The store cannot start as configured (for example a key claimed by two workspaces)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateVersion:
    """One version of a registry template, with its template's identity and current labels.

    Shared by the store's cache: treat the dicts as read-only.
    """

    template_id: int
    prompt_name: str
    tags: list[str]
    version_id: int
    number: int
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    commit_message: str | None
    release_labels: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewVersion:
    """A publish: the template is created when new, and the labels move to this version."""

    prompt_name: str
    prompt_template: dict[str, Any]
    metadata: dict[str, Any]
    commit_message: str | None = None
    tags: list[str] | None = None
    folder_id: int | None = None
    release_labels: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RequestRow:
    """A logged request, derived and ready to store; JSON columns are already encoded."""

    kind: Literal["track", "log"]
    provider: str
    model: str
    function_name: str
    start_time: float
    end_time: float
    body: str
    blueprint: str
    client_request_id: str | None = None
    api_type: str | None = None
    prompt_id: int | None = None
    prompt_version: int | None = None
    prompt_name: str | None = None
    input_variables: str | None = None
    tags: str = "[]"
    metadata: str = "{}"
    group_id: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    price: float = 0.0
    status: str = "SUCCESS"
    error_type: str | None = None
    error_message: str | None = None
    score: int | None = None
    score_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackCall:
    """A ``track.*`` call on a stored request (by server id, or by the client's id).

    ``values`` by endpoint: metadata ``{key: str}``; score ``{"score": int, "name": str|None}``;
    prompt ``{"prompt_name", "version", "label", "prompt_input_variables"}``; group
    ``{"group_id": int}``. ``client_call_id`` makes a retried call apply once.
    """

    endpoint: TrackEndpoint
    request_ref: int | str
    values: Mapping[str, Any]
    client_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An ingest record refused before it reached the store."""

    client_request_id: str
    error: str


class Store(Protocol):
    """The persistence the server's routes use."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def workspace_for_key(self, key_hash: str) -> int | None: ...

    async def add_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        """Register ``(workspace name, key hash)`` pairs, creating workspaces as needed."""

    async def has_keys(self) -> bool: ...

    async def get_version(
        self,
        workspace: int,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        metadata_filters: Mapping[str, Any] | None = None,
    ) -> TemplateVersion: ...

    async def list_templates(
        self, workspace: int, *, page: int, per_page: int, label: str | None
    ) -> tuple[list[TemplateVersion], int]: ...

    async def publish(self, workspace: int, new: NewVersion) -> TemplateVersion: ...

    async def insert_request(self, workspace: int, row: RequestRow) -> int: ...

    async def track(self, workspace: int, call: TrackCall) -> int:
        """Apply a track call; returns the request's server id."""

    async def create_group(self, workspace: int) -> int: ...

    async def ingest(
        self, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected]
    ) -> list[IngestResult]:
        """Store a batch in order, idempotently by client id; one result per item."""

    async def stored_ids(self, workspace: int, client_ids: Sequence[str]) -> dict[str, int]: ...

    async def list_requests(
        self, workspace: int, *, limit: int, offset: int, prompt_name: str | None
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def get_request(self, workspace: int, ref: int | str) -> dict[str, Any]: ...
