"""Bodies of the workflow endpoints, and the Centrifugo messages that carry a run's result.

PromptLayer's own endpoints (what the peer SDK calls): ``GET /workflows/{name}``,
``POST /ws-token-request-library?capability=<channel>`` (201), ``POST /workflows/{id}/run``
(201) and ``GET /workflow-version-execution-results``. promptrun's additions: publishing
(``POST /rest/workflows``), listing, and reading executions node by node under
``/promptrun/v1/workflow-executions``. Request bodies are decoded strictly (unknown keys are
a 400); answers may grow.
"""

from __future__ import annotations

from typing import Any

import msgspec

from promptrun.wire._limits import Id, Label, Labels, Metadata, Name, NonEmptyName, Text
from promptrun.wire.tracking import check_metadata

__all__ = [
    "COMPLETE_MESSAGE",
    "ExecutionList",
    "ExecutionNode",
    "ExecutionView",
    "PublishWorkflowBody",
    "RunStarted",
    "RunWorkflowBody",
    "TokenDetails",
    "WorkflowCompletion",
    "WorkflowList",
    "WorkflowPublished",
    "WorkflowView",
    "WorkflowWrapper",
    "WsToken",
    "publish_body_of",
]

COMPLETE_MESSAGE = "SET_WORKFLOW_COMPLETE"
"""The ``message_name`` of the publication that ends a run."""


class PublishWorkflowBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /rest/workflows``: a new version of a workflow (created when new).

    ``definition`` is the JSON format documented in :mod:`promptrun.workflows`;
    ``release_labels`` move to the new version, as they do for templates.
    """

    workflow_name: NonEmptyName
    definition: dict[str, Any]
    commit_message: Text | None = None
    release_labels: Labels = msgspec.field(default_factory=list)


class RunWorkflowBody(msgspec.Struct, kw_only=True):
    """``POST /workflows/{id}/run``: what the peer SDK sends, every key present (keys a newer
    SDK may add are ignored)."""

    input_variables: dict[str, Any] | None = None
    metadata: Metadata | None = None
    workflow_label_name: Label | None = None
    workflow_version_number: Id | None = None
    return_all_outputs: bool | None = False
    channel_name_suffix: Name | None = None

    def __post_init__(self) -> None:
        check_metadata(self.metadata, workflow=True)


class WorkflowView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    workflow_name: str
    version_id: int
    version_number: int
    release_labels: list[str]
    commit_message: str | None
    definition: dict[str, Any]
    created_at: float


class WorkflowWrapper(msgspec.Struct, kw_only=True):
    """``GET /workflows/{name_or_id}``: the peer reads ``workflow.id``."""

    success: bool
    workflow: WorkflowView


class WorkflowPublished(msgspec.Struct, kw_only=True):
    success: bool
    workflow: WorkflowView
    version_number: int


class WorkflowList(msgspec.Struct):
    items: list[WorkflowView]
    page: int
    per_page: int
    total: int


class TokenDetails(msgspec.Struct, kw_only=True):
    token: str
    expires: float
    capability: str


class WsToken(msgspec.Struct):
    """``POST /ws-token-request-library``: a token for one channel of one workspace."""

    token_details: TokenDetails


class RunStarted(msgspec.Struct, kw_only=True, omit_defaults=True):
    workflow_version_execution_id: int
    warning: str | None = None


class WorkflowCompletion(msgspec.Struct, kw_only=True):
    """The JSON string inside a ``SET_WORKFLOW_COMPLETE`` publication's ``data``.

    ``result_code`` is ``"OK"`` (``final_output`` holds the result) or ``"EXCEEDS_SIZE_LIMIT"``
    (fetch it from ``/workflow-version-execution-results``); other values are tolerated.
    """

    workflow_version_execution_id: int
    result_code: str | None = None
    final_output: Any = None


class ExecutionNode(msgspec.Struct, kw_only=True):
    name: str
    type: str
    status: str
    value: Any
    error_message: str | None
    raw_error_message: str | None
    is_output_node: bool
    started_at: float | None
    finished_at: float | None
    duration_ms: float | None
    request_id: int | None


class ExecutionView(msgspec.Struct, kw_only=True):
    id: int
    workflow_version_execution_id: int
    workflow_id: int
    workflow_name: str
    version_number: int
    status: str
    input_variables: dict[str, Any]
    metadata: dict[str, Any]
    return_all_outputs: bool
    error_message: str | None
    started_at: float
    finished_at: float | None
    duration_ms: float | None
    nodes: list[ExecutionNode] | None = None


class ExecutionList(msgspec.Struct):
    items: list[ExecutionView]
    total: int


def publish_body_of(
    document: Any,
    *,
    name: str | None = None,
    message: str | None = None,
    labels: list[str] | None = None,
    default_name: str | None = None,
) -> dict[str, Any]:
    """A ``POST /rest/workflows`` body from a file's or a form's JSON: a definition
    (``{"nodes": [...]}``) or a whole publish body. ``name``, ``message`` and ``labels``
    (added to the body's) win over the document's; ValueError says what does not fit."""
    if not isinstance(document, dict):
        raise ValueError("the JSON must be an object: a definition or a publish body")
    if "definition" in document and "nodes" not in document:
        body = dict(document)
        unknown = set(body) - {"workflow_name", "definition", "commit_message", "release_labels"}
        if unknown:
            raise ValueError(f"unknown keys in the publish body: {sorted(unknown)}")
    else:
        body = {"definition": document}
    chosen = name or body.get("workflow_name") or default_name
    if not chosen:
        raise ValueError("the workflow needs a name")
    body["workflow_name"] = chosen
    if message:
        body["commit_message"] = message
    if labels:
        known = body.get("release_labels")
        body["release_labels"] = list(
            dict.fromkeys([*(known if isinstance(known, list) else []), *labels])
        )
    return body
