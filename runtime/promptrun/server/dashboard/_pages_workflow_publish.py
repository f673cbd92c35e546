"""Publishing a workflow from the dashboard: paste its JSON or pick the file.

A picked file is read by the page's script into the text box (the form is sent urlencoded, as
every dashboard form is), so what is published is what the box shows.

The form takes a definition (``{"nodes": [...]}``) or a whole publish body, as ``promptrun
workflows push`` does, and checks it exactly as ``POST /rest/workflows`` does: the same body
type (so the same size limits) and the same checks, so the page shows the API's messages
(``the workflow has a cycle: draft -> check -> draft``). A refused form comes back filled in,
with the message above it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from promptrun.server._http import ApiError, decode_body
from promptrun.server._state import STORE
from promptrun.server.dashboard._web import PREFIX, render, session_of
from promptrun.server.routes.workflows import PUBLISH_BODY, new_workflow_version
from promptrun.server.store.base import NotFoundError
from promptrun.wire.workflows import publish_body_of

__all__ = ["routes"]

routes = web.RouteTableDef()
_FIELDS = ("name", "definition", "commit_message", "release_labels")
_EXAMPLE = {
    "input_variables": ["topic"],
    "nodes": [
        {
            "name": "draft",
            "type": "prompt_template",
            "configuration": {"prompt_name": "greet", "label": "prod"},
            "inputs": {"topic": "topic"},
        },
        {
            "name": "words",
            "type": "code",
            "configuration": {"code": "return len(draft.split())"},
            "inputs": {"draft": "draft"},
            "is_output_node": True,
        },
    ],
}


def _form(
    request: web.Request, fields: dict[str, str], *, error: str | None = None, status: int = 200
) -> web.Response:
    return render(
        request, "workflow_publish.html", status=status, nav="workflows", error=error, **fields
    )


@routes.get("/workflows/publish")
async def publish_form(request: web.Request) -> web.Response:
    session = session_of(request)
    name = request.query.get("name", "")
    definition: Any = _EXAMPLE
    if name:
        try:
            latest = await request.config_dict[STORE].get_workflow(session.workspace, name)
        except NotFoundError:
            pass
        else:
            definition = latest.definition
    text = json.dumps(definition, indent=2, ensure_ascii=False)
    return _form(
        request, {"name": name, "definition": text, "commit_message": "", "release_labels": ""}
    )


def _body(fields: dict[str, str]) -> dict[str, Any]:
    """The API body the form describes; ApiError with the API's words when it does not fit."""
    text = fields["definition"]
    if not text.strip():
        raise ApiError(400, "Paste the workflow's JSON or choose its file.")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    labels = [x.strip() for x in fields["release_labels"].split(",") if x.strip()]
    try:
        return publish_body_of(
            document,
            name=fields["name"].strip() or None,
            message=fields["commit_message"].strip() or None,
            labels=labels,
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


@routes.post("/workflows/publish")
async def publish(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = await request.post()
    fields = {k: str(form.get(k) or "") for k in _FIELDS}
    try:
        body = _body(fields)
        new = new_workflow_version(decode_body(msgspec.json.encode(body), PUBLISH_BODY))
    except ApiError as exc:
        return _form(request, fields, error=exc.message, status=400)
    except msgspec.ValidationError as exc:  # what the API's error middleware answers
        return _form(request, fields, error=f"invalid request body: {exc}", status=400)
    stored = await request.config_dict[STORE].publish_workflow(session.workspace, new)
    query = urlencode({"name": stored.name, "version": stored.number, "published": stored.number})
    raise web.HTTPSeeOther(f"{PREFIX}/workflow?{query}")
