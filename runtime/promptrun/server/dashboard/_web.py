"""The dashboard's plumbing: app keys, page rendering, the session and CSRF guard, error pages.

Every page is rendered by jinja2 with autoescaping on, and leaves with a Content-Security-Policy
that allows only this response's own inline style and script (by nonce), and requests to this
server only (the playground streams its answers with ``fetch``): a string that slipped
through as markup still could not run.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from promptrun.server._http import ApiError
from promptrun.server._state import CONFIG
from promptrun.server.dashboard._format import FILTERS
from promptrun.server.dashboard._sessions import COOKIE, Session, SessionStore, tokens_match
from promptrun.server.store.base import NotFoundError

__all__ = [
    "JINJA",
    "PREFIX",
    "SESSIONS",
    "DashboardError",
    "dashboard_middleware",
    "new_environment",
    "public",
    "render",
    "session_of",
    "whole_number",
]

log = logging.getLogger("promptrun.server.dashboard")

PREFIX = "/dashboard"
SESSIONS = web.AppKey("dashboard_sessions", SessionStore)
JINJA = web.AppKey("dashboard_jinja", jinja2.Environment)
_SESSION = web.RequestKey("dashboard_session", Session)
_NONCE = web.RequestKey("dashboard_nonce", str)
_PUBLIC = "__dashboard_public__"


class DashboardError(Exception):
    """A page that cannot be shown: the status and a sentence for the person reading it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_MAX_NUMBER = 2**31


def whole_number(raw: str, what: str) -> int:
    """A page or version number from the address; anything else is a 400 that says so.

    ASCII digits only: ``"²".isdigit()`` is true, yet ``int("²")`` fails.
    """
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= _MAX_NUMBER:
        raise DashboardError(400, f"{what} {raw!r} is not a number from 1 to {_MAX_NUMBER}")
    return int(raw)


def public(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """Mark a handler as reachable without signing in (the sign-in page itself)."""
    setattr(handler, _PUBLIC, True)
    return handler


def session_of(request: web.Request) -> Session:
    """The signed-in session; only handlers behind the guard may ask."""
    return request[_SESSION]


def new_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("promptrun.server.dashboard", "templates"),
        autoescape=True,  # everything, not only .html: logged text is hostile by default
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """``template`` rendered with ``context`` plus the session, CSRF token and CSP nonce."""
    session: Session | None = request.get(_SESSION)
    page = request.config_dict[JINJA].get_template(template)
    config = request.config_dict.get(CONFIG)
    html = page.render(
        prefix=PREFIX,
        unsafe_code_nodes=config is not None and config.code_nodes.unsafe,
        session=session,
        csrf_token=session.csrf_token if session else "",
        nonce=request.get(_NONCE, ""),
        path=request.path,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, status_code=status, message=message)


def _secure(response: web.StreamResponse, nonce: str) -> None:
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # same-origin, not no-referrer: Chromium sends "Origin: null" on POSTs under no-referrer.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not every client sends it; the CSRF token is the real check
    return origin == f"{request.scheme}://{request.host}"


async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == PREFIX:
        raise web.HTTPFound(f"{PREFIX}/")
    if getattr(request.match_info.handler, _PUBLIC, False):
        return await handler(request)
    session = await request.config_dict[SESSIONS].get(request.cookies.get(COOKIE))
    if session is None:
        target = f"{PREFIX}/signin"
        if request.method in ("GET", "HEAD"):
            target += "?next=" + quote(request.path_qs, safe="")
        raise web.HTTPSeeOther(target)
    request[_SESSION] = session
    if request.method == "POST":
        try:
            form = await request.post()
        except ValueError:
            # multipart/form-data: the connection guard has already read the body, so
            # aiohttp finds no parts; the dashboard's forms send urlencoded bodies.
            raise DashboardError(
                400, "This form could not be read. Send it from its dashboard page."
            ) from None
        token = form.get("csrf_token")
        if not _same_origin(request) or not tokens_match(
            token if isinstance(token, str) else None, session.csrf_token
        ):
            raise DashboardError(
                403,
                "This form was not sent from this dashboard page (its security token is "
                "missing or stale). Go back, reload the page and try again.",
            )
    return await handler(request)


@web.middleware
async def dashboard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sign-in guard, CSRF check, HTML error pages and security headers for every page."""
    nonce = secrets.token_urlsafe(16)
    request[_NONCE] = nonce
    try:
        response = await _guard(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:
            _secure(exc, nonce)
            raise
        response = _error_page(request, exc.status, exc.reason)
    except DashboardError as exc:
        response = _error_page(request, exc.status, exc.message)
    except NotFoundError as exc:
        response = _error_page(request, 404, exc.message)
    except ApiError as exc:
        response = _error_page(request, exc.status, exc.message)
    except Exception:
        log.exception("dashboard error on %s %s", request.method, request.path)
        response = _error_page(request, 500, "Something went wrong; the server log has details.")
    _secure(response, nonce)
    return response
