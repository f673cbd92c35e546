"""What the server needs from a store, and the plain records that cross that line.

:class:`Store` is every capability the routes, the workflow runner and the dashboard use; the
one implementation (``store/_store.py``) runs the operations of ``store/queries/`` on a SQLite
or PostgreSQL driver, picked by the factories in ``promptrun.server.store``.

A store is scoped by workspace on every call: ``workspace`` is the id the API key resolved to,
and an id that belongs to another workspace is reported as not found, never as forbidden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from promptrun.wire.ingest import IngestResult

__all__ = [
    "Bucket",
    "Cursor",
    "Deliver",
    "LogStats",
    "ModelPrice",
    "ModelUsage",
    "NewVersion",
    "NewWorkflowVersion",
    "NodeRow",
    "NotFoundError",
    "PageRequest",
    "PromptMetrics",
    "Rejected",
    "RequestPage",
    "RequestQuery",
    "RequestRow",
    "SortKey",
    "Store",
    "StoreConfigError",
    "StoreRelay",
    "TemplateDetail",
    "TemplateSummary",
    "TemplateVersion",
    "TrackCall",
    "TrackEndpoint",
    "UnstorableText",
    "VersionInfo",
    "WorkflowStore",
    "WorkflowVersion",
]

TrackEndpoint = Literal["metadata", "score", "prompt", "group"]
# Where a relay hands publications from other server processes: (workspace, channel, data).
Deliver = Callable[[int, str, dict[str, Any]], object]


# errors


class NotFoundError(LookupError):
    """A template, version, label, request, group or workflow the workspace does not have."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreConfigError(RuntimeError):
    """The store cannot start as configured (for example a key claimed by two workspaces)."""


class UnstorableText(msgspec.ValidationError):
    """A value the database cannot store as text (PostgreSQL: it holds a NUL character).

    A validation error of the request's body, so the server answers it 400 like any other.
    """


# the registry


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


# the request log


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


# workflows


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowVersion:
    workflow_id: int
    name: str
    version_id: int
    number: int
    definition: dict[str, Any]
    commit_message: str | None
    release_labels: list[str]
    created_at: float

    def view(self) -> dict[str, Any]:
        return {
            "id": self.workflow_id,
            "name": self.name,
            "workflow_name": self.name,
            "version_id": self.version_id,
            "version_number": self.number,
            "release_labels": self.release_labels,
            "commit_message": self.commit_message,
            "definition": self.definition,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NewWorkflowVersion:
    name: str
    definition: dict[str, Any]
    commit_message: str | None = None
    release_labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRow:
    """One node's result as stored; ``value`` is encoded JSON (None for no value)."""

    name: str
    type: str
    status: str
    value: str | None
    error_message: str | None
    raw_error_message: str | None
    is_output_node: bool
    started_at: float | None
    finished_at: float | None
    request_id: int | None = None


# the dashboard


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestQuery:
    """Filters for the request log; ``None`` means "any". Times are epoch seconds.

    ``text`` is a case-insensitive substring of the conversation (input and output);
    ``meta_key`` matches requests with that metadata key (logged with the request or added by
    ``track.metadata``), and with ``meta_value`` that exact value too.
    """

    prompt_name: str | None = None
    prompt_version: int | None = None
    tag: str | None = None
    provider: str | None = None
    model: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    meta_key: str | None = None
    meta_value: str | None = None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time slice of the log: ``start`` is epoch seconds; latencies are seconds
    (percentiles from the rollups' histograms: within about 13%; None with no requests)."""

    start: float
    requests: int
    errors: int
    mean_latency: float
    max_latency: float
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens and logged prices of one model; ``unpriced_*`` are tokens of requests logged
    without a price, which the price table turns into money."""

    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    logged_price: float
    unpriced_input_tokens: int
    unpriced_output_tokens: int


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """US dollars per million input and output tokens."""

    model: str
    input_per_million: float
    output_per_million: float


# the request log at scale (storeperf): pages, totals, percentiles

SortKey = Literal["time", "latency", "tokens", "cost"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of the request log starts or ends: the row's sort key (as stored) and id."""

    key: Any
    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRequest:
    """Which page: ``after`` a row (the next page in the order) or ``before`` one (the page in
    front of it); neither, the first. Descending time is newest first."""

    sort: SortKey = "time"
    descending: bool = True
    after: Cursor | None = None
    before: Cursor | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestPage:
    """Summaries as ``list_requests`` gives them; ``after``/``before`` are the cursors of the
    next and the previous page (None at either end). ``sort`` is the order applied, which is
    time when the one asked cannot be served fast (``notice`` says why). ``total`` is how
    many match: exact, or with ``total_exact`` False, more than the count cap."""

    items: list[dict[str, Any]]
    after: Cursor | None
    before: Cursor | None
    sort: SortKey
    notice: str | None = None
    total: int = 0
    total_exact: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LogStats:
    """The requests a filter matches, added up. With ``exact`` False there are more than
    ``requests`` and nothing else is known (no rollup answers the filter and counting stopped
    at the cap). ``usage`` is per model, for the price table; latencies are seconds,
    percentiles from histograms (within about 13%). ``source``: rollups, rows or count."""

    requests: int
    exact: bool = True
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usage: list[ModelUsage] = field(default_factory=list)
    mean_latency: float | None = None
    max_latency: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean_score: float | None = None
    source: str = "rollups"


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptMetrics:
    """One prompt version's requests over a time range (``version`` 0: none recorded)."""

    prompt_name: str
    version: int
    stats: LogStats


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSummary:
    name: str
    latest_version: int
    versions: int
    labels: list[str]
    tags: list[str]
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    number: int
    commit_message: str | None
    created_at: float
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateDetail:
    template_id: int
    name: str
    tags: list[str]
    created_at: float
    versions: list[VersionInfo]  # newest first


# the capabilities


class StoreRelay(Protocol):
    """Carries websocket publications to the other server processes on one database."""

    def send(self, workspace: int, channel: str, data: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class WorkflowStore(Protocol):
    """What the workflow routes and runner need, every call workspace-scoped.

    How a version is chosen (``get_workflow``): ``version`` given, that number; ``label``
    given, the version it points at; neither, the latest. ``ref`` is a name, or an id when
    it is an int (a string of digits is tried as a name first, then as an id).
    """

    async def publish_workflow(
        self, workspace: int, new: NewWorkflowVersion
    ) -> WorkflowVersion: ...

    async def get_workflow(
        self,
        workspace: int,
        ref: int | str,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> WorkflowVersion: ...

    async def list_workflows(
        self, workspace: int, *, page: int, per_page: int
    ) -> tuple[list[WorkflowVersion], int]: ...

    async def create_workflow_execution(
        self,
        workspace: int,
        version: WorkflowVersion,
        *,
        input_variables: dict[str, Any],
        metadata: dict[str, Any],
        return_all_outputs: bool,
    ) -> int: ...

    async def finish_workflow_execution(
        self,
        workspace: int,
        execution_id: int,
        *,
        status: str,
        nodes: Sequence[NodeRow],
        error_message: str | None = None,
    ) -> None: ...

    async def list_workflow_executions(
        self,
        workspace: int,
        *,
        workflow: int | str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first, without node results."""

    async def get_workflow_execution(self, workspace: int, execution_id: int) -> dict[str, Any]:
        """One execution with its node results (in definition order) under ``"nodes"``."""


class Store(WorkflowStore, Protocol):
    """The persistence of ``promptrun serve``: keys, registry, request log, workflows, dashboard."""

    # lifetime and the processes sharing the database

    async def start(self) -> None:
        """Connect, and create or migrate the schema."""

    async def close(self) -> None:
        """Finish the writes in flight, then disconnect."""

    async def shared_secret(self, name: str) -> bytes:
        """A random secret every server process on this store shares (SQLite: this one's)."""

    async def open_relay(self, deliver: Deliver) -> StoreRelay | None:
        """Start relaying websocket publications between the server processes on this
        database (PostgreSQL); None where one process serves the store (SQLite)."""

    # keys and workspaces

    async def workspace_for_key(self, key_hash: str) -> int | None: ...

    async def add_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        """Register ``(workspace name, key hash)`` pairs, creating workspaces as needed."""

    async def has_keys(self) -> bool: ...

    async def workspace_name(self, workspace: int) -> str: ...

    # the registry

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

    async def template_summaries(
        self, workspace: int, *, limit: int, offset: int
    ) -> tuple[list[TemplateSummary], int]:
        """Templates by name, each with its latest version number, version count and labels."""

    async def template_detail(self, workspace: int, name: str) -> TemplateDetail:
        """A template's versions, newest first, each with its commit message and labels."""

    # the request log

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

    # the dashboard's reads

    async def request_facets(self, workspace: int) -> dict[str, list[str]]:
        """The values seen in the log, for filter menus: prompts, providers, models, statuses,
        tags."""

    async def request_series(
        self, workspace: int, *, since: float, until: float, bucket: float
    ) -> list[Bucket]:
        """Every bucket from ``since`` to ``until`` (empty ones as zeros), oldest first."""

    async def usage_by_model(
        self, workspace: int, *, since: float | None = None, until: float | None = None
    ) -> list[ModelUsage]:
        """Per model: requests, tokens, and what was logged with and without a price."""

    async def model_prices(self, workspace: int) -> list[ModelPrice]: ...

    async def set_model_price(self, workspace: int, price: ModelPrice) -> None: ...

    async def delete_model_price(self, workspace: int, model: str) -> None: ...

    # the request log at scale (storeperf)

    async def request_page(
        self,
        workspace: int,
        query: RequestQuery,
        page: PageRequest,
        *,
        costs: Mapping[str, tuple[float, float]],
        with_blueprints: bool = False,
    ) -> RequestPage:
        """One page of the requests ``query`` matches, sorted as ``page`` asks (keyset
        pagination). ``costs`` prices tokens per model (USD per million in and out) for the
        cost sort; ``with_blueprints`` adds each one's decoded ``prompt_blueprint``."""

    async def request_stats(self, workspace: int, query: RequestQuery) -> LogStats:
        """Count, errors, tokens, latency percentiles and mean score of the matches."""

    async def prompt_metrics(
        self,
        workspace: int,
        *,
        since: float,
        until: float | None,
        prompt_name: str | None = None,
    ) -> list[PromptMetrics]:
        """Per prompt version (of ``prompt_name``, or of every prompt), requests from the UTC
        day of ``since`` to ``until`` (whole days: the per-prompt rollup is daily; None: now),
        most requests first."""
