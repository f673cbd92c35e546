"""The dashboard: server-rendered pages over the server's own store, under ``/dashboard``.

Sign in with an API key; everything shown is that key's workspace. Pages: an overview with
charts and latency percentiles, the request log (filters, search, sorting, totals, export,
one request in full, metrics by prompt and version), the prompt registry (versions,
diffs, publishing, release labels moved with a diff to confirm), a playground that runs a
version on the server's providers (streamed), workflows (published here, drawn as a graph)
and their executions, traces (a span tree on a waterfall, linked to the requests logged in
it), the price table that turns tokens into cost, and (for an admin key) the workspace's keys.
Works offline: no CDN, no external fonts, charts are inline SVG.
"""

from __future__ import annotations

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard import (
    _pages_auth,
    _pages_keys,
    _pages_labels,
    _pages_metrics,
    _pages_overview,
    _pages_playground,
    _pages_registry,
    _pages_requests,
    _pages_traces,
    _pages_workflow_publish,
    _pages_workflows,
    _request_export,
)
from promptrun.server.dashboard._sessions import SessionStore
from promptrun.server.dashboard._web import (
    JINJA,
    PREFIX,
    SESSIONS,
    dashboard_middleware,
    new_environment,
)

__all__ = ["PREFIX", "add_dashboard"]


async def _to_dashboard(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PREFIX}/")


def add_dashboard(app: web.Application) -> None:
    """Mount the dashboard over the app's store on ``app`` at ``/dashboard`` (and send ``/``
    there)."""
    dashboard = web.Application(middlewares=[dashboard_middleware])
    dashboard[SESSIONS] = SessionStore(app[STORE])
    dashboard[JINJA] = new_environment()
    for module in (
        _pages_auth,
        _pages_keys,
        _pages_overview,
        _request_export,  # before _pages_requests: /requests/{ref} would take its paths
        _pages_metrics,
        _pages_requests,
        _pages_registry,
        _pages_labels,
        _pages_playground,
        _pages_workflow_publish,
        _pages_workflows,
        _pages_traces,
    ):
        dashboard.add_routes(module.routes)
    app.add_subapp(PREFIX, dashboard)
    app.router.add_get("/", _to_dashboard)
