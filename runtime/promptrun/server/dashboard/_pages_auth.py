"""Signing in with an API key and signing out."""

from __future__ import annotations

import secrets

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.auth import hash_key
from promptrun.server.dashboard._sessions import COOKIE, LOGIN_COOKIE, tokens_match
from promptrun.server.dashboard._web import (
    PREFIX,
    SESSIONS,
    DashboardError,
    public,
    render,
    session_of,
)

__all__ = ["routes"]

routes = web.RouteTableDef()
_LOGIN_TTL = 3600
_MAX_KEY = 1024


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    home = f"{PREFIX}/"
    if not target or not target.startswith(PREFIX) or "\\" in target or "//" in target:
        return home
    return target


def _cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def _signin_page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "signin.html",
        status=status,
        signin_token=token,
        next=_safe_next(request.query.get("next")),
        error=error,
    )
    _cookie(response, request, LOGIN_COOKIE, token, _LOGIN_TTL)
    return response


@routes.get("/signin")
@public
async def signin_form(request: web.Request) -> web.StreamResponse:
    if request.config_dict[SESSIONS].get(request.cookies.get(COOKIE)) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _signin_page(request)


@routes.post("/signin")
@public
async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = form.get("signin_token")
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not tokens_match(token if isinstance(token, str) else None, expected):
        raise DashboardError(
            403, "This sign-in form has expired or came from elsewhere. Reload it and try again."
        )
    key = form.get("api_key")
    key = key.strip() if isinstance(key, str) else ""
    if not key or len(key) > _MAX_KEY:
        return _signin_page(request, error="Enter an API key.", status=400)
    workspace = await request.config_dict[STORE].workspace_for_key(hash_key(key))
    if workspace is None:
        return _signin_page(
            request,
            error="Unknown API key. Use a key this server accepts (promptrun serve --api-key).",
            status=401,
        )
    name = await request.config_dict[STORE].workspace_name(workspace)
    session = request.config_dict[SESSIONS].create(workspace, name)
    target = form.get("next")
    response = web.HTTPSeeOther(_safe_next(target if isinstance(target, str) else None))
    _cookie(response, request, COOKIE, session.id, int(request.config_dict[SESSIONS].ttl))
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    raise response


@routes.post("/signout")
async def signout(request: web.Request) -> web.StreamResponse:
    request.config_dict[SESSIONS].end(session_of(request).id)
    response = web.HTTPSeeOther(f"{PREFIX}/signin")
    response.del_cookie(COOKIE, path=PREFIX)
    raise response
