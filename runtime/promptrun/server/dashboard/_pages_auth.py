"""Signing in with an API key (attempts limited, with backoff) and signing out."""

from __future__ import annotations

import math
import secrets

from aiohttp import web

from promptrun.server._state import CONFIG, KEYRING, STORE
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
    if await request.config_dict[SESSIONS].get(request.cookies.get(COOKIE)) is not None:
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
    keyring, store = request.config_dict[KEYRING], request.config_dict[STORE]
    # Attempts are limited per client address and per key tried, across server processes;
    # a blocked attempt is refused before its key is even looked at.
    subjects = [f"ip:{request.remote or '?'}", f"key:{keyring.digest(key)[:32]}"]
    wait = await store.signin_wait(subjects)
    if wait > 0:
        return _too_many(request, wait)
    grant = await keyring.grant_for_key(key)
    if grant is None:
        wait = await store.signin_failed(subjects, request.config_dict[CONFIG].signin_policy)
        later = f" Wait {math.ceil(wait)} s before trying again." if wait > 0 else ""
        return _signin_page(
            request,
            error="Unknown API key, or a revoked one. Use a key this server accepts "
            "(promptrun serve --api-key, or one made with promptrun keys create)." + later,
            status=401,
        )
    name = await store.workspace_name(grant.workspace)
    sessions = request.config_dict[SESSIONS]
    session = await sessions.create(grant, name)
    target = form.get("next")
    response = web.HTTPSeeOther(_safe_next(target if isinstance(target, str) else None))
    _cookie(response, request, COOKIE, session.id, int(sessions.lifetime))
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    raise response


def _too_many(request: web.Request, wait: float) -> web.Response:
    seconds = math.ceil(wait)
    response = _signin_page(
        request,
        error=f"Too many failed sign-ins from this address or with this key. Try again in "
        f"{seconds} s.",
        status=429,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@routes.post("/signout")
async def signout(request: web.Request) -> web.StreamResponse:
    await request.config_dict[SESSIONS].end(session_of(request).id)
    response = web.HTTPSeeOther(f"{PREFIX}/signin")
    response.del_cookie(COOKIE, path=PREFIX)
    raise response
