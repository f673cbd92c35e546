"""Workflows: definitions and their executions, each node's status, value, error and timing.

Reads the store's workflow tables.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard._charts import timeline
from promptrun.server.dashboard._format import duration
from promptrun.server.dashboard._graph import workflow_graph
from promptrun.server.dashboard._web import (
    DashboardError,
    render,
    session_of,
    whole_number,
)
from promptrun.server.store.base import NotFoundError

__all__ = ["routes"]

routes = web.RouteTableDef()
PAGE_SIZE = 50


def _page(request: web.Request) -> int:
    return whole_number(request.query.get("page", "1"), "page")


@routes.get("/workflows")
async def workflow_list(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    chosen = {k: request.query.get(k, "") for k in ("workflow", "status")}
    page = _page(request)
    definitions, _ = await store.list_workflows(session.workspace, page=1, per_page=500)
    executions, total = await store.list_workflow_executions(
        session.workspace,
        workflow=chosen["workflow"] or None,
        status=chosen["status"] or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    kept = {k: v for k, v in chosen.items() if v}
    return render(
        request,
        "workflows.html",
        nav="workflows",
        definitions=definitions,
        executions=executions,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        chosen=chosen,
        statuses=["RUNNING", "SUCCESS", "FAILED", "ERROR"],
        base_query=urlencode(kept),
    )


@routes.get("/workflow")
async def workflow_page(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    name = request.query.get("name", "")
    if not name:
        raise DashboardError(404, "No such workflow.")
    raw_version = request.query.get("version", "")
    latest = await store.get_workflow(session.workspace, name)
    version = (
        await store.get_workflow(
            session.workspace, name, version=whole_number(raw_version, "version")
        )
        if raw_version
        else latest
    )
    executions, total = await store.list_workflow_executions(
        session.workspace, workflow=latest.workflow_id, status=None, limit=20, offset=0
    )
    nodes = version.definition.get("nodes")
    return render(
        request,
        "workflow.html",
        nav="workflows",
        workflow=version,
        latest=latest.number,
        nodes=nodes if isinstance(nodes, list) else [],
        executions=executions,
        total=total,
        graph=workflow_graph(version.definition),
        published=request.query.get("published", ""),
    )


def _offset(started: float | None, origin: float) -> str:
    return "—" if started is None else "+" + duration(max(0.0, started - origin))


@routes.get("/workflows/executions/{id}")
async def execution_page(request: web.Request) -> web.Response:
    session = session_of(request)
    execution = await request.config_dict[STORE].get_workflow_execution(
        session.workspace, whole_number(request.match_info["id"], "execution")
    )
    origin = float(execution["started_at"])
    nodes = execution.get("nodes") or []
    chart = timeline(
        [
            (
                node["name"],
                None if node.get("started_at") is None else node["started_at"] - origin,
                None
                if node.get("started_at") is None or node.get("finished_at") is None
                else node["finished_at"] - node["started_at"],
                str(node.get("status")),
            )
            for node in nodes
        ],
        duration,
        width=1200,  # the chart spans the page, so its text stays at the page's size
    )
    try:
        version = await request.config_dict[STORE].get_workflow(
            session.workspace, execution["workflow_name"], version=execution["version_number"]
        )
    except NotFoundError:
        graph = None
    else:
        statuses = {str(node["name"]): str(node.get("status")) for node in nodes}
        graph = workflow_graph(version.definition, statuses)
    return render(
        request,
        "workflow_execution.html",
        graph=graph,
        nav="workflows",
        execution=execution,
        nodes=[{**node, "offset": _offset(node.get("started_at"), origin)} for node in nodes],
        chart=chart,
    )
