"""The prompt registry: templates, a template's versions and labels, diffs, publishing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from promptrun.server._http import ApiError
from promptrun.server._state import STORE
from promptrun.server._template_check import check_metadata, check_prompt_template
from promptrun.server.dashboard._diff import diff_rows, version_text
from promptrun.server.dashboard._messages import conversation_of
from promptrun.server.dashboard._web import (
    PREFIX,
    DashboardError,
    render,
    session_of,
    whole_number,
)
from promptrun.server.store.base import NewVersion, NotFoundError
from promptrun.wire.templates import template_name_problem

__all__ = ["routes"]

routes = web.RouteTableDef()
PAGE_SIZE = 50
_BLANK_TEMPLATE = {
    "type": "chat",
    "input_variables": ["name"],
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You are concise."}]},
        {"role": "user", "content": [{"type": "text", "text": "Say hello to {name}."}]},
    ],
}
_BLANK_METADATA = {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}


def _name(request: web.Request) -> str:
    name = request.query.get("name", "")
    if not name:
        raise DashboardError(400, "Which template? The address needs ?name=...")
    return name


def _number(request: web.Request, key: str) -> int | None:
    raw = request.query.get(key, "")
    return whole_number(raw, key) if raw else None


@routes.get("/prompts")
async def template_list(request: web.Request) -> web.Response:
    session = session_of(request)
    page = whole_number(request.query.get("page", "1"), "page")
    items, total = await request.config_dict[STORE].template_summaries(
        session.workspace, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render(
        request,
        "prompts.html",
        nav="prompts",
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


@routes.get("/prompt")
async def template_page(request: web.Request) -> web.Response:
    session = session_of(request)
    name = _name(request)
    detail = await request.config_dict[STORE].template_detail(session.workspace, name)
    number = _number(request, "version") or detail.versions[0].number
    version = await request.config_dict[STORE].get_version(session.workspace, name, version=number)
    shown = conversation_of(
        {"kind": "template", "prompt_blueprint": {"prompt_template": version.prompt_template}}
    )
    older = [v.number for v in detail.versions if v.number < number]
    return render(
        request,
        "prompt.html",
        nav="prompts",
        detail=detail,
        version=version,
        messages=shown.sent,
        diff_from=older[0] if older else number,
        published=_number(request, "published"),
        unchanged=_number(request, "unchanged"),
        all_labels=sorted({label for v in detail.versions for label in v.labels}),
        moved=request.query.get("moved", ""),
        moved_from=_number(request, "from"),
    )


@routes.get("/prompt/diff")
async def template_diff(request: web.Request) -> web.Response:
    session = session_of(request)
    name = _name(request)
    store = request.config_dict[STORE]
    detail = await request.config_dict[STORE].template_detail(session.workspace, name)
    latest = detail.versions[0].number
    a = _number(request, "a") or max(1, latest - 1)
    b = _number(request, "b") or latest
    old = await store.get_version(session.workspace, name, version=a)
    new = await store.get_version(session.workspace, name, version=b)
    rows = diff_rows(
        version_text(old.prompt_template, old.metadata),
        version_text(new.prompt_template, new.metadata),
    )
    return render(
        request,
        "diff.html",
        nav="prompts",
        detail=detail,
        old=old,
        new=new,
        rows=rows,
    )


def _publish_form(
    request: web.Request,
    *,
    name: str,
    existing: bool,
    template_text: str,
    metadata_text: str,
    commit_message: str = "",
    labels: str = "",
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "publish.html",
        status=status,
        nav="prompts",
        name=name,
        existing=existing,
        template_text=template_text,
        metadata_text=metadata_text,
        commit_message=commit_message,
        labels=labels,
        error=error,
    )


@routes.get("/publish")
async def publish_form(request: web.Request) -> web.Response:
    session = session_of(request)
    name = request.query.get("name", "")
    template: dict[str, Any] = _BLANK_TEMPLATE
    metadata: dict[str, Any] = _BLANK_METADATA
    existing = False
    if name:
        try:
            latest = await request.config_dict[STORE].get_version(session.workspace, name)
        except NotFoundError:
            pass
        else:
            template, metadata, existing = latest.prompt_template, latest.metadata, True
    return _publish_form(
        request,
        name=name,
        existing=existing,
        template_text=json.dumps(template, indent=2, ensure_ascii=False),
        metadata_text=json.dumps(metadata, indent=2, ensure_ascii=False),
    )


def _json_field(text: str, what: str, *, required: bool) -> dict[str, Any]:
    if not text.strip():
        if required:
            raise DashboardError(400, f"{what} is required.")
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DashboardError(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DashboardError(400, f"{what} must be a JSON object {{...}}.")
    return value


@routes.post("/publish")
async def publish(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = await request.post()
    fields = {
        k: str(form.get(k, ""))
        for k in ("name", "prompt_template", "metadata", "commit_message", "release_labels")
    }
    name = fields["name"].strip()
    labels = list(
        dict.fromkeys(x.strip() for x in fields["release_labels"].split(",") if x.strip())
    )
    try:
        if (problem := template_name_problem(name)) is not None:
            raise DashboardError(400, f"The template name {problem}.")
        template = _json_field(fields["prompt_template"], "The prompt template", required=True)
        metadata = _json_field(fields["metadata"], "The metadata", required=False)
        check_prompt_template(template, "prompt_template")
        check_metadata(metadata, "metadata")
        stored = await request.config_dict[STORE].publish(
            session.workspace,
            NewVersion(
                prompt_name=name,
                prompt_template=template,
                metadata=metadata,
                commit_message=fields["commit_message"].strip() or None,
                release_labels=labels,
            ),
        )
    except (DashboardError, ApiError) as exc:
        return _publish_form(
            request,
            name=name,
            existing=False,
            template_text=fields["prompt_template"],
            metadata_text=fields["metadata"],
            commit_message=fields["commit_message"],
            labels=fields["release_labels"],
            error=exc.message,
            status=400,
        )
    outcome = "unchanged" if stored.unchanged else "published"
    query = urlencode(
        {"name": stored.prompt_name, "version": stored.number, outcome: stored.number}
    )
    raise web.HTTPSeeOther(f"{PREFIX}/prompt?{query}")
