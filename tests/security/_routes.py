"""The app's routes, sorted by how they are protected, for the tests that walk the router.

Every route is REST (JSON, a promptrun API key) unless listed here with the reason. A new
route that authenticates another way belongs in ``NOT_KEYED`` with how it does; the
workflows' websocket, for one, takes its token in the connect message.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from promptrun.server.app import ServerConfig, create_app

__all__ = [
    "DASHBOARD",
    "NOT_KEYED",
    "PUBLIC",
    "Route",
    "all_routes",
    "full_app",
    "is_dashboard",
    "is_not_keyed",
    "rest_routes",
]

Route = tuple[str, str]  # (method, path as the router spells it, e.g. /requests/{ref})

# Answer without a key: documented as public in the OpenAPI document.
PUBLIC: frozenset[Route] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/promptrun/v1/info"),
        ("GET", "/promptrun/v1/openapi.json"),
    }
)

# Path prefixes that are not the keyed REST API, and why.
NOT_KEYED: dict[str, str] = {
    "/sandbox": "fake OpenAI, Anthropic and Google APIs for offline runs; they take the "
    "provider SDKs' keys, and hold no workspace data (their /_control takes a promptrun key "
    "in a header: test_sandbox_controls.py)",
    "/connection/websocket": "the workflow-results websocket: a client proves itself with the "
    "token from /ws-token-request-library (a keyed route) in its connect message",
}

DASHBOARD = "/dashboard"
"""HTML pages behind their own sign-in (a session cookie made from a key)."""


def full_app(db_path: Path) -> web.Application:
    """An app with every optional part mounted: sandbox, fault injection, dashboard."""
    return create_app(
        ServerConfig(db_path=db_path, sandbox=True, fault_injection=True, generate_key=False)
    )


def is_not_keyed(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in NOT_KEYED)


def is_dashboard(path: str) -> bool:
    return path in ("/", DASHBOARD) or path.startswith(DASHBOARD + "/")


def all_routes(app: web.Application) -> list[Route]:
    """Every (method, path) the app routes, subapps included; HEAD (aiohttp's twin of GET)
    left out."""
    found: set[Route] = set()
    for resource in app.router.resources():
        for route in resource:
            if route.method == "HEAD" or route.resource is None:
                continue
            found.add((route.method, route.resource.canonical))
    return sorted(found)


def rest_routes(app: web.Application) -> list[Route]:
    """The routes that are the keyed REST API, public ones included."""
    return [
        (method, path)
        for method, path in all_routes(app)
        if not is_dashboard(path) and not is_not_keyed(path)
    ]
