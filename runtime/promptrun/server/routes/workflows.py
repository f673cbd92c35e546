"""Workflow endpoints: publish and read workflows, run them, read their executions.

The PromptLayer ones, as the peer SDK's ``run_workflow`` uses them: ``GET /workflows/{name}``
(200, ``workflow.id``), ``POST /ws-token-request-library?capability=<channel>`` (201),
``POST /workflows/{id}/run`` (201, the execution id; the run continues in the background and
its result is pushed on the websocket, see :mod:`promptrun.server.ws`; with a W3C
``traceparent`` header its spans go into the caller's trace, see
:mod:`promptrun.server._execution_trace`), and
``GET /workflow-version-execution-results`` (200, for results too large to push).

promptrun's own: ``POST /rest/workflows`` publishes a version (201; a definition that cannot
run is a 400 naming the problem), ``GET /workflows`` lists, ``GET /workflows/{name_or_id}``
returns the definition (``?version=`` or ``?label=``, else the latest), and
``/promptrun/v1/workflow-executions[/{id}[/cancel]]`` list, show (node by node: status, value,
errors, timing, logged request) and cancel executions. Everything is scoped to the key's
workspace.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from aiohttp import web

from promptrun.server._execution_trace import parse_traceparent
from promptrun.server._executions import RunRequest, WorkflowRuns, WorkflowSettings
from promptrun.server._http import ApiError, json_response, path_id, query_int, read_body
from promptrun.server._prompt_runs import PROMPTS, sandbox_origin
from promptrun.server._state import CONFIG, KEYRING, render_budget
from promptrun.server.openapi import Operation, Param
from promptrun.server.store.base import NewWorkflowVersion, Store, WorkflowStore
from promptrun.server.ws import CHANNEL, HUB, Hub, WsSettings
from promptrun.wire.templates import template_name_problem
from promptrun.wire.workflows import (
    ExecutionList,
    ExecutionView,
    PublishWorkflowBody,
    RunStarted,
    RunWorkflowBody,
    WorkflowList,
    WorkflowPublished,
    WorkflowWrapper,
    WsToken,
)
from promptrun.workflows.definition import DefinitionError, parse_definition
from promptrun.workflows.engine import WorkflowInputError, final_output, resolve_variables

__all__ = [
    "OPERATIONS",
    "PUBLISH_BODY",
    "WORKFLOWS",
    "new_workflow_version",
    "routes",
    "setup_workflows",
]

WORKFLOWS = web.AppKey("promptrun_workflow_runs", WorkflowRuns)
routes = web.RouteTableDef()

PUBLISH_BODY = msgspec.json.Decoder(PublishWorkflowBody)
_RUN_BODY = msgspec.json.Decoder(RunWorkflowBody)
_MAX_PAGE = 1_000_000_000
_MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_STATUSES = ("RUNNING", "SUCCESS", "FAILED")


def setup_workflows(app: web.Application, store: Store) -> None:
    """Give ``app`` its websocket hub and workflow runner (routes are added with the others)."""
    hub = app[HUB] = Hub(WsSettings())
    config = app[CONFIG]
    settings = WorkflowSettings(
        tool_urls=config.tool_urls,
        code_nodes=config.code_nodes,
        render_budget=render_budget(config),
        lease_seconds=config.execution_lease,
        native_transport=config.native_transport,
    )
    runs = app[WORKFLOWS] = WorkflowRuns(store, hub, settings)
    app[PROMPTS] = runs.prompts  # the dashboard's playground runs prompts the same way

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await runs.start()
        try:
            yield
        finally:
            await runs.close()

    app.cleanup_ctx.append(lifetime)


def _workflows(request: web.Request) -> WorkflowStore:
    return request.app[WORKFLOWS].store


def _ref(raw: str) -> str:
    # A name, or an id in digits: the store tries the name first, then the id.
    if len(raw) > 512:
        raise ApiError(400, "a workflow name is at most 512 characters")
    return raw


def _bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw in ("true", "false"):
        return raw == "true"
    raise ApiError(400, f"query parameter {name}={raw!r} must be true or false")


@routes.get("/workflows")
async def list_workflows(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    page = query_int(request, "page", 1, low=1, high=_MAX_PAGE)
    per_page = query_int(request, "per_page", 30, low=1, high=1000)
    items, total = await _workflows(request).list_workflows(workspace, page=page, per_page=per_page)
    return json_response(
        {"items": [v.view() for v in items], "page": page, "per_page": per_page, "total": total}
    )


@routes.get("/workflows/{ref:[^/]+}")  # any name: braces too
async def get_workflow(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    version = query_int(request, "version", 0, low=1, high=_MAX_ID) or None
    label = request.query.get("label") or None
    found = await _workflows(request).get_workflow(
        workspace, _ref(request.match_info["ref"]), version=version, label=label
    )
    return json_response({"success": True, "workflow": found.view()})


def new_workflow_version(body: PublishWorkflowBody) -> NewWorkflowVersion:
    """What a publish body stores, checked: an ApiError says what is wrong, in the words the
    API answers with (the dashboard's publish form shows the same)."""
    name = body.workflow_name
    if (problem := template_name_problem(name)) is not None:  # fetched by name in a URL too
        raise ApiError(400, f"workflow_name {problem}")
    if name != name.strip() or "/" in name or (name.isascii() and name.isdigit()):
        raise ApiError(
            400,
            "workflow_name must have no surrounding spaces, no '/', and "
            "not be only digits (those are workflow ids)",
        )
    if any(not label.strip() for label in body.release_labels):
        raise ApiError(400, "release_labels must be non-empty strings")
    try:
        spec = parse_definition(body.definition)
    except DefinitionError as exc:
        raise ApiError(400, exc.message) from None
    return NewWorkflowVersion(
        name=name,
        definition=spec.to_builtins(),
        commit_message=body.commit_message,
        release_labels=list(dict.fromkeys(body.release_labels)),
    )


@routes.post("/rest/workflows")
async def publish_workflow(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    new = new_workflow_version(await read_body(request, PUBLISH_BODY))
    stored = await _workflows(request).publish_workflow(workspace, new)
    return json_response(
        {"success": True, "workflow": stored.view(), "version_number": stored.number}, status=201
    )


@routes.post("/ws-token-request-library")
async def ws_token(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    channel = request.query.get("capability", "")
    match = CHANNEL.match(channel)
    if match is None:
        raise ApiError(
            400, "capability must be a workflow run channel: workflows:<id>:run:<suffix>"
        )
    await _workflows(request).get_workflow(workspace, int(match.group(1)))
    hub = request.app[HUB]
    token, expires = hub.signer.issue(workspace, channel, hub.settings.token_ttl)
    return json_response(
        {"token_details": {"token": token, "expires": expires, "capability": channel}},
        status=201,
    )


@routes.post("/workflows/{ref:[^/]+}/run")
async def run_workflow(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    body = await read_body(request, _RUN_BODY)
    runs = request.app[WORKFLOWS]
    raw = request.match_info["ref"]
    ref: int | str = int(raw) if _DIGITS.fullmatch(raw) and int(raw) <= _MAX_ID else raw
    version = await runs.store.get_workflow(
        workspace, ref, version=body.workflow_version_number, label=body.workflow_label_name
    )
    spec = runs.spec_for(version)
    try:
        variables, extra = resolve_variables(spec, body.input_variables)
    except WorkflowInputError as exc:
        raise ApiError(400, f"workflow {version.name!r} version {version.number}: {exc}") from None
    warnings = []
    if extra:
        warnings.append(
            f"input variables the workflow does not declare were ignored: {', '.join(extra)}"
        )
    if body.workflow_version_number is not None and body.workflow_label_name is not None:
        warnings.append(
            "both workflow_version_number and workflow_label_name given: the version won"
        )
    channel = None
    if body.channel_name_suffix:
        channel = f"workflows:{version.workflow_id}:run:{body.channel_name_suffix}"
        if CHANNEL.match(channel) is None:
            raise ApiError(400, "channel_name_suffix must be 1 to 128 letters, digits, - or _")
    execution_id = await runs.start_execution(
        RunRequest(
            workspace=workspace,
            version=version,
            spec=spec,
            variables=variables,
            metadata={str(k): str(v) for k, v in (body.metadata or {}).items()},
            return_all_outputs=bool(body.return_all_outputs),
            channel=channel,
            origin=sandbox_origin(request, request.app[CONFIG].sandbox),
            trace=parse_traceparent(request.headers.get("traceparent")),
        )
    )
    answer: dict[str, Any] = {"workflow_version_execution_id": execution_id}
    if warnings:
        answer["warning"] = "; ".join(warnings)
    return json_response(answer, status=201)


def _results(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    keys = ("status", "value", "error_message", "raw_error_message", "is_output_node")
    return {node["name"]: {k: node[k] for k in keys} for node in execution["nodes"]}


@routes.get("/workflow-version-execution-results")
async def execution_results(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    if "workflow_version_execution_id" not in request.query:
        raise ApiError(400, "query parameter workflow_version_execution_id is required")
    execution_id = query_int(request, "workflow_version_execution_id", 0, low=1, high=_MAX_ID)
    return_all = _bool(request, "return_all_outputs")
    execution = await _workflows(request).get_workflow_execution(workspace, execution_id)
    if execution["status"] == "RUNNING":
        raise ApiError(
            409, f"workflow execution {execution_id} is still running; wait for its result push"
        )
    results = _results(execution)
    if return_all:
        return json_response(results)
    found, value = final_output(results)
    return json_response(value if found else results)


@routes.get("/promptrun/v1/workflow-executions")
async def list_executions(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    limit = query_int(request, "limit", 50, low=1, high=1000)
    offset = query_int(request, "offset", 0, low=0, high=_MAX_ID)
    status = request.query.get("status")
    if status is not None and status not in _STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(_STATUSES)}")
    workflow = request.query.get("workflow") or None
    items, total = await _workflows(request).list_workflow_executions(
        workspace,
        workflow=_ref(workflow) if workflow else None,
        status=status,
        limit=limit,
        offset=offset,
    )
    return json_response({"items": items, "total": total})


def _execution_id(request: web.Request) -> int:
    return path_id(request, "execution id")


@routes.get("/promptrun/v1/workflow-executions/{id}")
async def get_execution(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    execution = await _workflows(request).get_workflow_execution(workspace, _execution_id(request))
    return json_response(execution)


@routes.post("/promptrun/v1/workflow-executions/{id}/cancel")
async def cancel_execution(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    execution_id = _execution_id(request)
    execution = await _workflows(request).get_workflow_execution(workspace, execution_id)
    # Running here, or (PostgreSQL) in another process, which the request reaches.
    cancelled = execution["status"] == "RUNNING" and request.app[WORKFLOWS].request_cancel(
        workspace, execution_id
    )
    return json_response({"success": True, "cancelled": cancelled})


class _Cancelled(msgspec.Struct):
    success: bool
    cancelled: bool


_ID = Param(name="id", where="path", schema={"type": "integer", "minimum": 1, "maximum": _MAX_ID})
_PAGING = (
    Param(name="page", schema={"type": "integer", "minimum": 1, "maximum": _MAX_PAGE}),
    Param(name="per_page", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
)
OPERATIONS = [
    Operation(
        method="GET", path="/workflows", tag="workflows", response=WorkflowList,
        summary="The workspace's workflows, each at its latest version", params=_PAGING,
    ),
    Operation(
        method="GET", path="/workflows/{ref}", tag="workflows", response=WorkflowWrapper,
        summary="A workflow version with its definition (by name, or id)", errors=(404,),
        params=(
            Param(name="version", schema={"type": "integer", "minimum": 1, "maximum": _MAX_ID}),
            Param(name="label", schema={"type": "string"}, description="a release label"),
        ),
    ),
    Operation(
        method="POST", path="/rest/workflows", success=201, tag="workflows",
        summary="Publish a workflow version; labels move to it", request=PublishWorkflowBody,
        response=WorkflowPublished,
    ),
    Operation(
        method="POST", path="/ws-token-request-library", success=201, tag="workflows",
        summary="A websocket token for one workflow run channel", response=WsToken,
        errors=(404,),
        params=(
            Param(
                name="capability", schema={"type": "string"},
                description="the channel: workflows:<id>:run:<suffix>",
            ),
        ),
    ),
    Operation(
        method="POST", path="/workflows/{ref}/run", success=201, tag="workflows",
        summary="Start a workflow execution; its result is pushed on the websocket (with a "
        "W3C traceparent header, its spans are recorded in the caller's trace)",
        request=RunWorkflowBody, request_required=False, response=RunStarted, errors=(404,),
    ),
    Operation(
        method="GET", path="/workflow-version-execution-results", tag="workflows",
        summary="A finished execution's output (all nodes with return_all_outputs=true)",
        response=Any, errors=(404, 409),
        params=(
            Param(
                name="workflow_version_execution_id",
                schema={"type": "integer", "minimum": 1, "maximum": _MAX_ID},
            ),
            Param(name="return_all_outputs", schema={"type": "boolean"}),
        ),
    ),
    Operation(
        method="GET", path="/promptrun/v1/workflow-executions", tag="workflows",
        summary="Workflow executions, newest first", response=ExecutionList,
        errors=(404,),
        params=(
            Param(name="workflow", schema={"type": "string"}, description="a name or id"),
            Param(name="status", schema={"type": "string", "enum": list(_STATUSES)}),
            Param(name="limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
            Param(name="offset", schema={"type": "integer", "minimum": 0, "maximum": _MAX_ID}),
        ),
    ),
    Operation(
        method="GET", path="/promptrun/v1/workflow-executions/{id}", tag="workflows",
        summary="One execution, node by node", response=ExecutionView, errors=(404,),
        params=(_ID,),
    ),
    Operation(
        method="POST", path="/promptrun/v1/workflow-executions/{id}/cancel", tag="workflows",
        summary="Cancel a running execution, in whichever server process runs it",
        response=_Cancelled, errors=(404,),
        params=(_ID,),
    ),
    Operation(
        method="GET", path="/connection/websocket", tag="workflows", success=101,
        summary="Centrifugo JSON-protocol websocket for workflow results (token in connect)",
        response=None, auth=False, errors=(400,),
    ),
]  # fmt: skip
