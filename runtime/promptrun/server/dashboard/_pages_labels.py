"""Release labels moved from the dashboard: promote a version to ``prod``, roll back.

One click on a version's "set prod" (or the label form) opens a confirmation that shows the
diff between the version the label is on and the one it would move to; confirming moves it
(``POST /prompt/label``, CSRF-checked) and nothing is published. The confirmation carries the
version the label was on when it was shown: if someone moved it meanwhile, the move is
refused and the page says so, rather than overwrite a move nobody reviewed.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from promptrun.server._state import STORE
from promptrun.server.dashboard._diff import diff_rows, version_text
from promptrun.server.dashboard._web import (
    PREFIX,
    DashboardError,
    render,
    session_of,
    whole_number,
)
from promptrun.server.store.base import TemplateLabels

__all__ = ["routes"]

routes = web.RouteTableDef()
_MAX_LABEL = 512


def _label(raw: str) -> str:
    label = raw.strip()
    if not label or len(label) > _MAX_LABEL:
        raise DashboardError(400, f"A release label is 1 to {_MAX_LABEL} characters, like prod.")
    return label


def _where(labels: TemplateLabels, label: str) -> int | None:
    return next((x.number for x in labels.labels if x.label == label), None)


@routes.get("/prompt/label")
async def confirm(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    name = request.query.get("name", "")
    if not name:
        raise DashboardError(400, "Which template? The address needs ?name=...")
    label = _label(request.query.get("label", ""))
    target = await store.get_version(
        session.workspace, name, version=whole_number(request.query.get("version", ""), "version")
    )
    current_number = _where(await store.template_labels(session.workspace, name), label)
    current = (
        None
        if current_number is None
        else await store.get_version(session.workspace, name, version=current_number)
    )
    before = [] if current is None else version_text(current.prompt_template, current.metadata)
    rows = diff_rows(before, version_text(target.prompt_template, target.metadata))
    return render(
        request,
        "label_confirm.html",
        nav="prompts",
        name=name,
        label=label,
        target=target,
        current=current,
        rows=rows,
    )


@routes.post("/prompt/label")
async def move(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    store = request.config_dict[STORE]
    form = await request.post()
    name = str(form.get("name", ""))
    label = _label(str(form.get("label", "")))
    number = whole_number(str(form.get("version", "")), "version")
    shown_from = str(form.get("from", ""))
    now = _where(await store.template_labels(session.workspace, name), label)
    if str(now or "") != shown_from:
        where = f"v{now}" if now is not None else "nowhere (it was removed)"
        raise DashboardError(
            409,
            f"{label} is on {where} now, not where it was when you reviewed this move: "
            "someone moved it meanwhile. Go back to the template and review the move again.",
        )
    moved = await store.set_label(session.workspace, name, label, number)
    query = {"name": name, "version": number, "moved": label}
    if moved.previous_number is not None:
        query["from"] = moved.previous_number
    raise web.HTTPSeeOther(f"{PREFIX}/prompt?{urlencode(query)}")
