"""The prompt registry: fetch a version rendered for a provider, list templates, publish.

``POST /prompt-templates/{name}`` is on every uncached ``run()``'s path, so it touches no
disk when the store's version cache is warm: decode, look up, render, build kwargs, encode.

Rendering: with ``input_variables`` in the body (even ``{}``) the template is rendered and a
variable it uses but was not given is a 422; without them, or with
``skip_input_variable_rendering``, it comes back as stored, and ``llm_kwargs`` are built from
the unrendered text (clients that render locally ask for this). Rendering is held to the
server's budget (``--render-timeout``, ``--render-max-chars``): a template past it is a 422
that names the budget and its limit. It runs in a render thread, except a small f-string
template with a small body (no loops, microseconds of work), which the hot path of every
uncached ``run()`` renders on the event loop rather than pay a thread hop.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import msgspec
from aiohttp import web

from promptrun import blueprint as bp
from promptrun._render_threads import run_rendering
from promptrun.pipeline import warn_missing
from promptrun.server._http import ApiError, json_response, query_int
from promptrun.server._responses import Published, TemplateList, TemplateView
from promptrun.server._state import CONFIG, KEYRING, STORE, render_budget
from promptrun.server._template_check import check_metadata, check_prompt_template
from promptrun.server.auth import authorized_body
from promptrun.server.openapi import Operation, Param
from promptrun.server.store.base import NewVersion, TemplateVersion
from promptrun.server.store.queries.templates import metadata_matches
from promptrun.wire._limits import MAX_NAME
from promptrun.wire.templates import GetTemplateBody, PublishBody, template_name_problem

__all__ = ["OPERATIONS", "routes", "template_ref"]

routes = web.RouteTableDef()

_FETCH_BODY = msgspec.json.Decoder(GetTemplateBody)
_PUBLISH_BODY = msgspec.json.Decoder(PublishBody)
# Far past any real registry, and small enough that page * per_page stays an SQL integer.
MAX_PAGE = 1_000_000_000


def _view(
    version: TemplateVersion,
    prompt_template: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": version.template_id,
        "prompt_name": version.prompt_name,
        "version": version.number,
        "prompt_template": version.prompt_template if prompt_template is None else prompt_template,
        "metadata": version.metadata if metadata is None else metadata,
        "provider_base_url": None,
        "tags": version.tags,
        "commit_message": version.commit_message,
        "release_labels": version.release_labels,
        "snippets": [],
    }


log = logging.getLogger("promptrun.server")

# A small f-string template with small inputs renders on the event loop: it cannot loop, it
# costs microseconds, and a thread hop would double the cost of every uncached run().
_INLINE_BODY = 64 * 1024


async def _rendered(
    request: web.Request, version: TemplateVersion, variables: dict[str, Any]
) -> dict[str, Any]:
    budget = render_budget(request.app[CONFIG])
    # Missing variables render empty, as the PromptLayer API and SDK render them (warned once).
    missing: list[str] = []
    render = functools.partial(bp.render_prompt_template, budget=budget, on_missing=missing.extend)
    inline = (request.content_length or _INLINE_BODY) < _INLINE_BODY and bp.renders_quickly(
        version.prompt_template
    )
    try:
        if inline:
            rendered = render(version.prompt_template, variables)
        else:
            rendered = await run_rendering(render, version.prompt_template, variables)
    except bp.RenderBudgetError as exc:
        raise exc.naming(
            f"prompt template {version.prompt_name!r} (version {version.number})"
        ) from None
    warn_missing(log, version.prompt_name, version.number, missing, where=" on the server")
    return rendered


def template_ref(raw: str) -> str:
    """A template's name (or id) from the path; a 400 past the longest name there can be."""
    if len(raw) > MAX_NAME:
        raise ApiError(400, f"a prompt template name is at most {MAX_NAME} characters")
    return raw


# [\s\S]: a name stored before names were checked may hold a newline, which "." skips.
@routes.post(r"/prompt-templates/{name:[\s\S]+}")
async def fetch_template(request: web.Request) -> web.Response:
    workspace, body = await authorized_body(request, request.app[KEYRING], _FETCH_BODY)
    version = await request.app[STORE].get_version(
        workspace,
        template_ref(request.match_info["name"]),
        version=body.version,
        label=body.label,
        metadata_filters=body.metadata_filters,
    )
    template = version.prompt_template
    if body.input_variables is not None and not body.skip_input_variable_rendering:
        template = await _rendered(request, version, body.input_variables)
    stored_model = version.metadata.get("model")
    metadata = version.metadata
    llm_kwargs: dict[str, Any] | None = None
    if stored_model or body.provider:
        model = bp.resolve_model(stored_model or {}, body.provider, body.model)
        llm_kwargs = bp.build_llm_kwargs(template, model)
        if body.model_parameter_overrides:
            llm_kwargs = bp.apply_parameter_overrides(
                model["provider"], llm_kwargs, body.model_parameter_overrides
            )
        metadata = {**metadata, "model": model}
    view = _view(version, template, metadata)
    view["llm_kwargs"] = llm_kwargs
    if body.metadata_filters and body.version is None and body.label is None:
        # No match falls back to the latest version (the peer SDK sends a run()'s metadata
        # as filters); this says which happened, for callers that select by metadata.
        view["metadata_filters_matched"] = metadata_matches(version.metadata, body.metadata_filters)
    return json_response(view)


@routes.get("/prompt-templates")
async def list_templates(request: web.Request) -> web.Response:
    workspace = await request.app[KEYRING].workspace(request)
    page = query_int(request, "page", 1, low=1, high=MAX_PAGE)
    per_page = query_int(request, "per_page", 30, low=1, high=1000)
    label = request.query.get("label") or None
    items, total = await request.app[STORE].list_templates(
        workspace, page=page, per_page=per_page, label=label
    )
    return json_response(
        {"items": [_view(v) for v in items], "page": page, "per_page": per_page, "total": total}
    )


def _labels(body: PublishBody) -> list[str]:
    given = body.release_labels
    if given is None:
        given = body.prompt_template.release_labels or body.prompt_version.release_labels or []
    for label in given:
        if not label.strip():
            raise ApiError(400, "release_labels must be non-empty strings")
    return list(dict.fromkeys(given))


@routes.post("/rest/prompt-templates")
async def publish_template(request: web.Request) -> web.Response:
    """201 with the new version; 200 with ``unchanged: true`` and the latest version when
    that version already holds this template and metadata and every label asked for."""
    workspace, body = await authorized_body(request, request.app[KEYRING], _PUBLISH_BODY)
    name = body.prompt_template.prompt_name
    if (problem := template_name_problem(name)) is not None:
        raise ApiError(400, f"prompt_template.prompt_name {problem}")
    version = body.prompt_version
    check_prompt_template(version.prompt_template, "prompt_version.prompt_template")
    metadata = version.metadata or {}
    check_metadata(metadata, "prompt_version.metadata")
    stored = await request.app[STORE].publish(
        workspace,
        NewVersion(
            prompt_name=name,
            prompt_template=version.prompt_template,
            metadata=metadata,
            commit_message=version.commit_message or body.prompt_template.commit_message,
            tags=body.prompt_template.tags,
            folder_id=body.prompt_template.folder_id,
            release_labels=_labels(body),
        ),
    )
    return json_response(
        {
            "id": stored.template_id,
            "prompt_name": stored.prompt_name,
            "prompt_version_id": stored.version_id,
            "version_number": stored.number,
            "tags": stored.tags,
            "release_labels": stored.release_labels,
            "prompt_template": stored.prompt_template,
            "metadata": stored.metadata,
            "commit_message": stored.commit_message,
            "unchanged": stored.unchanged,
        },
        status=200 if stored.unchanged else 201,
    )


OPERATIONS = [
    Operation(
        method="POST", path="/prompt-templates/{name}", tag="registry",
        summary="A template version, rendered and with provider kwargs when asked",
        request=GetTemplateBody, request_required=False, response=TemplateView,
        errors=(404, 422),
        params=(
            Param(
                name="name", where="path",
                schema={"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            ),
        ),
    ),
    Operation(
        method="GET", path="/prompt-templates", summary="The workspace's templates, latest versions",
        tag="registry", response=TemplateList,
        params=(
            Param(name="page", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            Param(name="per_page", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
            Param(name="label", schema={"type": "string"}, description="only versions with it"),
        ),
    ),
    Operation(
        method="POST", path="/rest/prompt-templates", success=201, tag="registry",
        summary="Publish a new version, creating the template if new",
        request=PublishBody, response=Published,
        also=((200, "Unchanged: the latest version already holds this template and metadata "
               "and every label asked for; nothing was created (unchanged: true)"),),
    ),
]  # fmt: skip
