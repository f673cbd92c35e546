"""The workspace's API keys, for a session signed in with an admin key: list, create, revoke.

A new key is shown on the page that answers its creation and nowhere else (the page is not
cached, and nothing redirects to it). A member key's session gets a 403 page.
"""

from __future__ import annotations

from aiohttp import web

from promptrun.server._key_admin import ROLES, check_name, check_role, create_key
from promptrun.server._state import KEYRING, STORE
from promptrun.server.dashboard._web import (
    PREFIX,
    DashboardError,
    render,
    session_of,
    whole_number,
)
from promptrun.server.store.base import ApiKey, KeyRefused

__all__ = ["routes"]

routes = web.RouteTableDef()


def _admin(request: web.Request) -> int:
    """The session's workspace, if its key is an admin key."""
    session = session_of(request)
    if session.role != "admin":
        raise DashboardError(
            403,
            "The keys page is for admin keys. This session signed in with a member key; "
            "sign in with an admin key of the workspace to manage its keys.",
        )
    return session.workspace


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    created: ApiKey | None = None,
    created_key: str | None = None,
    revoked: ApiKey | None = None,
) -> web.Response:
    workspace = _admin(request)
    keys = await request.config_dict[STORE].list_keys(workspace, revoked=True)
    return render(
        request,
        "keys.html",
        status=status,
        nav="keys",
        keys=keys,
        roles=ROLES,
        current=session_of(request).key_id,
        error=error,
        created=created,
        created_key=created_key,
        revoked=revoked,
    )


@routes.get("/keys")
async def keys_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/keys")
async def create(request: web.Request) -> web.Response:
    workspace = _admin(request)
    form = await request.post()
    name, role = form.get("name"), form.get("role")
    try:
        checked = check_name(name if isinstance(name, str) else "")
        chosen = check_role(role if isinstance(role, str) else None)
    except ValueError as exc:
        return await _page(request, status=400, error=str(exc))
    key, stored = await create_key(
        request.config_dict[STORE],
        request.config_dict[KEYRING].digest,
        workspace=workspace,
        name=checked,
        role=chosen,
    )
    return await _page(request, created=stored, created_key=key)


@routes.post("/keys/{id}/revoke")
async def revoke(request: web.Request) -> web.StreamResponse:
    workspace = _admin(request)
    key_id = whole_number(request.match_info["id"], "key")
    try:
        revoked = await request.config_dict[STORE].revoke_key(workspace, key_id)
    except KeyRefused as exc:
        return await _page(request, status=409, error=exc.message)
    request.config_dict[KEYRING].forget(revoked.id)
    if revoked.id == session_of(request).key_id:
        # This session's own key: its sessions ended with it.
        raise web.HTTPSeeOther(f"{PREFIX}/signin")
    return await _page(request, revoked=revoked)
