"""Managing the workspace's API keys: ``/promptrun/v1/keys``, for admin keys.

An admin key lists, creates and revokes the keys of its own workspace; a member key gets a
403, and a key of another workspace is not found (404), as everywhere. A new key is in the
answer to its creation and nowhere else, ever: only its digest is stored. A revoked key is
refused by every server process on the database within about a second.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import web

from promptrun.server._http import ApiError, json_response, path_id, read_body
from promptrun.server._key_admin import MAX_NAME, KeyView, check_name, create_key, key_view
from promptrun.server._state import KEYRING, STORE
from promptrun.server.openapi import Operation, Param
from promptrun.server.store.base import KeyRefused
from promptrun.wire._limits import MAX_ID

__all__ = ["OPERATIONS", "routes"]

routes = web.RouteTableDef()


class CreateKeyBody(msgspec.Struct, forbid_unknown_fields=True):
    """A key's name (for people: who or what uses it) and its role; member by default."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
    role: Literal["member", "admin"] = "member"


class KeyList(msgspec.Struct):
    items: list[KeyView]


class CreatedKey(msgspec.Struct):
    """``key`` is the new key: shown here once, never again."""

    success: bool
    key: str
    api_key: KeyView


class RevokedKey(msgspec.Struct):
    success: bool
    api_key: KeyView


_CREATE = msgspec.json.Decoder(CreateKeyBody)


@routes.get("/promptrun/v1/keys")
async def list_keys(request: web.Request) -> web.Response:
    grant = await request.app[KEYRING].admin(request)
    raw = request.query.get("include_revoked", "false")
    if raw not in ("true", "false"):
        raise ApiError(400, f"query parameter include_revoked={raw!r} must be true or false")
    keys = await request.app[STORE].list_keys(grant.workspace, revoked=raw == "true")
    return json_response({"items": [key_view(k, grant.key_id) for k in keys]})


@routes.post("/promptrun/v1/keys")
async def create(request: web.Request) -> web.Response:
    keyring = request.app[KEYRING]
    grant = await keyring.admin(request)
    body = await read_body(request, _CREATE)
    try:
        check_name(body.name)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    key, stored = await create_key(
        request.app[STORE], keyring.digest, workspace=grant.workspace, name=body.name,
        role=body.role,
    )  # fmt: skip
    return json_response(
        {"success": True, "key": key, "api_key": key_view(stored, grant.key_id)}, status=201
    )


@routes.post("/promptrun/v1/keys/{id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    keyring = request.app[KEYRING]
    grant = await keyring.admin(request)
    key_id = path_id(request, "key id")
    try:
        revoked = await request.app[STORE].revoke_key(grant.workspace, key_id)
    except KeyRefused as exc:
        raise ApiError(409, exc.message) from None
    keyring.forget(revoked.id)
    return json_response({"success": True, "api_key": key_view(revoked, grant.key_id)})


_ID = Param(name="id", where="path", schema={"type": "integer", "minimum": 1, "maximum": MAX_ID})
OPERATIONS = [
    Operation(
        method="GET", path="/promptrun/v1/keys", tag="keys", response=KeyList,
        summary="The workspace's API keys (admin keys only)", errors=(403,),
        params=(Param(name="include_revoked", schema={"type": "boolean"}),),
    ),
    Operation(
        method="POST", path="/promptrun/v1/keys", tag="keys", response=CreatedKey,
        success=201, request=CreateKeyBody, errors=(403,),
        summary="Create a key in the workspace; the answer is the only time it is shown",
    ),
    Operation(
        method="POST", path="/promptrun/v1/keys/{id}/revoke", tag="keys", response=RevokedKey,
        summary="Revoke a key (refused everywhere within a second); not the last admin key",
        errors=(403, 404, 409), params=(_ID,),
    ),
]  # fmt: skip
