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
from promptrun.wire.tracking import TrackEndpoint

__all__ = [
    "ApiKey",
    "Bucket",
    "Cursor",
    "DashboardSession",
    "Deliver",
    "ExpiredExecution",
    "KeyGrant",
    "KeyRefused",
    "KeyRole",
    "LabelMove",
    "LogStats",
    "ModelPrice",
    "ModelUsage",
    "NewKey",
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
    "SigninPolicy",
    "SortKey",
    "SpanRow",
    "Store",
    "StoreConfigError",
    "StoreRelay",
    "TemplateDetail",
    "TemplateLabel",
    "TemplateLabels",
    "TemplateSummary",
    "TemplateVersion",
    "TraceQuery",
    "TrackCall",
    "UnstorableText",
    "VersionInfo",
    "WorkflowStore",
    "WorkflowVersion",
]

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


class KeyRefused(ValueError):
    """A key change that would leave a workspace unmanageable (revoking its last admin key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    #: Set by a publish that found the latest version identical and created nothing.
    unchanged: bool = False


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


# release labels (the prompt lifecycle): moved without publishing


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateLabel:
    """A release label and the version it is on."""

    id: int
    label: str
    version_id: int
    number: int
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateLabels:
    template_id: int
    prompt_name: str
    labels: list[TemplateLabel]  # by name


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelMove:
    """A label put on a version, moved, or removed: where it is now, where it was before."""

    template_id: int
    prompt_name: str
    label: TemplateLabel  # as it is now (when removed: as it was)
    previous_number: int | None  # None: the label is new
    removed: bool = False


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
    span_id: str | None = None  # the trace span the request was made in, as the client said


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
    many match: exact, or with ``total_exact`` False, more than the count cap, and ``total``
    is the cap + 1 (10,001, or 1,001 for a text search)."""

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


# traces (OpenTelemetry spans received on /v1/traces)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanRow:
    """One span as stored: ids in lowercase hex, times in Unix nanoseconds, and
    ``attributes``, ``events``, ``links`` and ``resource`` (the resource's attributes) as
    encoded JSON. ``status_code`` is ``UNSET``, ``OK`` or ``ERROR``; ``kind`` is OTLP's
    kind in lowercase (``internal``, ``server``, ``client``, ``producer``, ``consumer`` or
    ``unspecified``)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service_name: str
    start_ns: int
    end_ns: int
    status_code: str
    status_message: str | None
    attributes: str
    events: str
    links: str
    resource: str
    scope_name: str
    scope_version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceQuery:
    """Filters for the traces list; ``None`` means "any". ``service``, ``name`` and
    ``status`` are the trace's root span's; times are epoch seconds (the trace's start) and
    durations seconds; ``has_error``: some span of the trace has the status ``ERROR``.
    ``after_id`` keeps only traces first seen after the one with that id (for following)."""

    service: str | None = None
    name: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    has_error: bool | None = None
    after_id: int | None = None


# keys, dashboard sessions, execution leases

KeyRole = Literal["admin", "member"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """An API key as listed: never the key itself, which is shown once when it is made.

    ``hint`` is the key's last characters (empty for a short key, or one stored before keys
    had hints and not used since); ``source`` says where it came from: ``api-key`` (given
    to ``promptrun serve --api-key``), ``generated`` (made at a first start), ``created``
    (``promptrun keys create``, the REST API or the dashboard) or ``migrated`` (stored by a
    promptrun from before key management).
    """

    id: int
    workspace: int
    workspace_name: str
    name: str
    role: KeyRole
    hint: str
    source: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKey:
    """A key to store, by its digest. ``workspace`` is an id, or a name (made if new).

    ``role`` None: admin when the workspace has no active admin key yet (its first key),
    else member.
    """

    key_hash: str
    workspace: int | str
    name: str
    role: KeyRole | None = None
    hint: str = ""
    source: str = "created"


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What an active key may do: act in ``workspace``; manage its keys when admin."""

    key_id: int
    workspace: int
    role: KeyRole
    has_hint: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSession:
    """A signed-in dashboard session as stored, with its key's workspace and current role."""

    key_id: int
    workspace: int
    workspace_name: str
    role: KeyRole
    csrf_token: str
    seen_at: float
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SigninPolicy:
    """Failed sign-ins per subject (a client address, a key tried): ``free`` failures, then
    a wait of ``first_wait``, twice that, four times ... seconds (at most ``max_wait``)
    before the next attempt is taken; a subject's failures are forgotten ``window`` seconds
    after its last one."""

    free: int = 5
    first_wait: float = 1.0
    max_wait: float = 900.0
    window: float = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiredExecution:
    """A RUNNING workflow execution whose process stopped renewing its lease."""

    id: int
    workspace: int
    channel: str | None
    return_all_outputs: bool
    definition: dict[str, Any]
    lease_owner: str | None


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
        lease_owner: str | None = None,
        lease_expires: float | None = None,
        channel: str | None = None,
    ) -> int:
        """A RUNNING execution; ``lease_owner`` (the running process) renews its lease, and
        ``channel`` is where its result is pushed, also by whoever finds the lease expired."""

    async def finish_workflow_execution(
        self,
        workspace: int,
        execution_id: int,
        *,
        status: str,
        nodes: Sequence[NodeRow],
        error_message: str | None = None,
    ) -> bool:
        """Store the result of a RUNNING execution; False if it had ended already (another
        process found its lease expired and marked it failed)."""

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

    # keys, dashboard sessions and sign-in limits, execution leases (subject: keys)
    #
    # A key is stored as a digest (the server's HMAC, see server/auth.py); ``workspace`` None
    # on a key operation means every workspace (the operator's ``promptrun keys --db``).

    async def workspace_for_key(self, key_hash: str) -> int | None:
        """The workspace of an active key; None for an unknown or revoked one."""

    async def grants_for(self, key_hashes: Sequence[str]) -> dict[str, KeyGrant]:
        """The active keys among these digests, each with its workspace and role."""

    async def add_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        """Register ``(workspace name, key hash)`` pairs, creating workspaces as needed."""

    async def register_keys(self, keys: Sequence[NewKey]) -> list[ApiKey]:
        """Store keys not stored yet (a key never moves to another workspace:
        ``StoreConfigError``); each key's row, new or as it was (revoked ones stay revoked)."""

    async def list_keys(self, workspace: int | None, *, revoked: bool = False) -> list[ApiKey]:
        """By workspace, then id; revoked keys too with ``revoked``."""

    async def revoke_key(self, workspace: int | None, key_id: int) -> ApiKey:
        """Revoke a key and end its dashboard sessions. ``NotFoundError`` for a key the
        workspace does not have; ``KeyRefused`` for the workspace's last active admin key."""

    async def touch_keys(self, used: Sequence[tuple[int, float, str]]) -> None:
        """Record ``(key id, last used at, hint)``; a hint fills only an empty one."""

    async def upgrade_key_hashes(self, rehash: Callable[[str], str]) -> int:
        """Replace each digest stored in an older format by ``rehash(digest)``; how many."""

    async def has_keys(self) -> bool: ...

    async def workspace_name(self, workspace: int) -> str: ...

    async def create_session(
        self, id_hash: str, key_id: int, csrf_token: str, *, expires_at: float, idle: float
    ) -> None:
        """A dashboard session (found later by ``id_hash``); expired ones are dropped."""

    async def get_session(self, id_hash: str, *, idle: float) -> DashboardSession | None:
        """The session if it is live: not past its expiry, used within ``idle`` seconds,
        and its key not revoked."""

    async def touch_session(self, id_hash: str) -> None:
        """Record that the session was used now (its idle time starts again)."""

    async def end_session(self, id_hash: str) -> None: ...

    async def signin_wait(self, subjects: Sequence[str]) -> float:
        """Seconds before these subjects may try to sign in again (0: now)."""

    async def signin_failed(self, subjects: Sequence[str], policy: SigninPolicy) -> float:
        """Count a failed sign-in against each subject; the wait it now imposes."""

    async def renew_leases(self, owner: str, expires: float) -> list[int]:
        """Extend the leases of ``owner``'s RUNNING executions; their ids."""

    async def expired_executions(self, now: float, *, limit: int = 100) -> list[ExpiredExecution]:
        """RUNNING executions whose lease ended before ``now`` (or that never had one)."""

    async def fail_expired_execution(
        self,
        execution: ExpiredExecution,
        *,
        expired_before: float,
        message: str,
        nodes: Sequence[NodeRow],
    ) -> bool:
        """Mark it FAILED if it is still RUNNING and its lease still ended before
        ``expired_before``; whether it was."""

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

    # release labels (the prompt lifecycle): a template is named by name or id (``ref``)

    async def template_labels(self, workspace: int, ref: int | str) -> TemplateLabels: ...

    async def set_label(self, workspace: int, ref: int | str, label: str, number: int) -> LabelMove:
        """Put ``label`` on version ``number``, creating it or moving it from where it was."""

    async def move_label(self, workspace: int, label_id: int, number: int) -> LabelMove: ...

    async def delete_label(self, workspace: int, label_id: int) -> LabelMove: ...

    # the request log

    async def insert_request(self, workspace: int, row: RequestRow) -> int: ...

    async def track(self, workspace: int, call: TrackCall) -> int:
        """Apply a track call; returns the request's server id."""

    async def create_group(self, workspace: int) -> int: ...

    async def ingest(
        self, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected]
    ) -> list[IngestResult]:
        """Store a batch in order, idempotently by client id; one result per item."""

    async def stored_ids(self, workspace: int, client_ids: Sequence[str]) -> dict[str, int]:
        """Which of these client ids (records or track calls) the workspace holds, by server id."""

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

    # traces (queries/traces.py)

    async def insert_spans(self, workspace: int, spans: Sequence[SpanRow]) -> int:
        """Store spans, idempotently by (trace id, span id); how many were new."""

    async def list_traces(
        self, workspace: int, query: TraceQuery, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Trace summaries, newest start first (first seen first with ``after_id``), and the
        total matching."""

    async def get_trace(self, workspace: int, trace_id: str, *, max_spans: int) -> dict[str, Any]:
        """A trace's summary with its spans (by start time, at most ``max_spans``), each
        with the id of the request logged in it, if any."""

    async def trace_facets(self, workspace: int) -> dict[str, list[str]]:
        """Services and root span names of recent traces, for filter menus."""

    async def trace_of_span(self, workspace: int, span_id: str) -> str | None:
        """The id of the trace holding this span, if it has arrived."""
