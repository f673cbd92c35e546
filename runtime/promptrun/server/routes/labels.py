"""Release labels moved without publishing: promote a tested version to ``prod``, roll back.

The PromptLayer API's endpoints and shapes (see :mod:`promptrun.wire.labels`):
``GET /prompt-templates/{identifier}/labels``, ``POST /prompts/{prompt_id}/label``,
``PATCH /prompt-labels/{id}`` and ``DELETE /prompt-labels/{id}``. A template is named by its
id or, as a promptrun extension, by its name (a name is tried first, so a template named
``"12"`` is found by name). ``POST`` on a label the template already has moves it, so one
call promotes whether or not the label exists yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from aiohttp import web

from promptrun.server._http import ApiError, json_response, path_id, read_body
from promptrun.server._state import KEYRING, STORE
from promptrun.server.openapi import Operation, Param
from promptrun.server.routes.templates import template_ref
from promptrun.server.store.base import LabelMove
from promptrun.wire._limits import MAX_ID, MAX_NAME
from promptrun.wire.labels import CreateLabelBody, LabelView, MoveLabelBody, TemplateLabelList

__all__ = ["OPERATIONS", "label_view", "routes"]

routes = web.RouteTableDef()

_CREATE = msgspec.json.Decoder(CreateLabelBody)
_MOVE = msgspec.json.Decoder(MoveLabelBody)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def label_view(move: LabelMove) -> dict[str, object]:
    """The answer for a label put on a version, moved or removed."""
    label = move.label
    return {
        "id": label.id,
        "name": label.label,
        "prompt_id": move.template_id,
        "prompt_version_id": label.version_id,
        "created_at": _iso(label.created_at),
        "prompt_name": move.prompt_name,
        "prompt_version_number": label.number,
        "previous_version_number": move.previous_number,
        "removed": move.removed,
    }


def _label_name(name: str) -> str:
    if not name.strip():
        raise ApiError(400, "name must be a non-empty release label, such as 'prod'")
    return name


@routes.get("/prompt-templates/{identifier:.+}/labels")
async def list_labels(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    found = await request.app[STORE].template_labels(
        workspace, template_ref(request.match_info["identifier"])
    )
    return json_response(
        {
            "prompt_id": found.template_id,
            "prompt_name": found.prompt_name,
            "release_labels": [
                {
                    "release_label_id": x.id,
                    "release_label": x.label,
                    "prompt_version_id": x.version_id,
                    "prompt_version_number": x.number,
                }
                for x in found.labels
            ],
        }
    )


@routes.post("/prompts/{prompt_id:.+}/label")
async def create_label(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    body = await read_body(request, _CREATE)
    move = await request.app[STORE].set_label(
        workspace,
        template_ref(request.match_info["prompt_id"]),
        _label_name(body.name),
        body.prompt_version_number,
    )
    return json_response(label_view(move))


@routes.patch("/prompt-labels/{id}")
async def move_label(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    label_id = path_id(request, "release label id")
    body = await read_body(request, _MOVE)
    move = await request.app[STORE].move_label(workspace, label_id, body.prompt_version_number)
    return json_response(label_view(move))


@routes.delete("/prompt-labels/{id}")
async def delete_label(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    move = await request.app[STORE].delete_label(workspace, path_id(request, "release label id"))
    return json_response(label_view(move))


_LABEL_ID = Param(
    name="id", where="path", schema={"type": "integer", "minimum": 1, "maximum": MAX_ID}
)
_TEMPLATE = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}
OPERATIONS = [
    Operation(
        method="GET", path="/prompt-templates/{identifier}/labels", tag="registry",
        summary="A template's release labels and the versions they are on",
        response=TemplateLabelList, errors=(404,),
        params=(
            Param(
                name="identifier", where="path", schema=_TEMPLATE,
                description="the template's name, or its id",
            ),
        ),
    ),
    Operation(
        method="POST", path="/prompts/{prompt_id}/label", tag="registry",
        summary="Put a release label on a version (moved there if the template has it); "
        "nothing is published",
        request=CreateLabelBody, response=LabelView, errors=(404,),
        params=(
            Param(
                name="prompt_id", where="path", schema=_TEMPLATE,
                description="the template's id, or its name",
            ),
        ),
    ),
    Operation(
        method="PATCH", path="/prompt-labels/{id}", tag="registry",
        summary="Move a release label to another version of its template",
        request=MoveLabelBody, response=LabelView, errors=(404,), params=(_LABEL_ID,),
    ),
    Operation(
        method="DELETE", path="/prompt-labels/{id}", tag="registry",
        summary="Remove a release label; the answer says which version it was on",
        response=LabelView, errors=(404,), params=(_LABEL_ID,),
    ),
]  # fmt: skip
