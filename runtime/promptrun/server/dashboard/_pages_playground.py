"""The playground: run a prompt version on the server's providers and watch the answer arrive.

``GET /playground?name=greet&version=3`` is a form: the version's input variables, a provider
and model (overrides), and optionally a second version to compare on the same inputs;
``&request=ID`` fills it from a logged request ("open in playground"). ``POST /playground/run``
runs one version through the server's :class:`~promptrun.server._prompt_runs.PromptRunner`,
the path workflow prompt nodes take (the rendering budget, the server's own provider
credentials or its sandbox, the run stored as a request tagged ``playground``), and answers
with server-sent events when asked (``Accept: text/event-stream``: ``start``, ``text`` per
chunk, then ``done`` or ``error``), else with the page and its finished results (no script
needed). Text from the model only ever reaches the page as text.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from aiohttp import web
from multidict import MultiMapping

from promptrun import blueprint as bp
from promptrun._errors import PromptLayerError
from promptrun.pipeline import PROVIDERS, LogOptions
from promptrun.server._prompt_runs import (
    PROMPTS,
    PromptRunError,
    StreamEnd,
    provider_route,
    sandbox_origin,
)
from promptrun.server._state import CONFIG, STORE
from promptrun.server.dashboard._format import duration, usd
from promptrun.server.dashboard._prices import PriceTable, request_cost
from promptrun.server.dashboard._web import (
    PREFIX,
    DashboardError,
    render,
    session_of,
    whole_number,
)
from promptrun.server.store.base import NotFoundError, TemplateVersion

__all__ = ["routes", "template_variables"]

routes = web.RouteTableDef()
TAG = "playground"


def template_variables(prompt_template: Mapping[str, Any]) -> list[str]:
    """The variables a template declares or uses, declared ones first."""
    found: list[str] = [
        v for v in prompt_template.get("input_variables") or () if isinstance(v, str)
    ]
    messages = prompt_template.get("messages")
    blocks = messages if isinstance(messages, list) else [prompt_template]
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        fmt = block.get("template_format") or prompt_template.get("template_format")
        for part in block.get("content") or ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                try:
                    found.extend(bp.variables_in(part["text"], fmt))
                except (bp.TemplateRenderError, RecursionError):
                    continue  # the run says what is wrong with it
    return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Field:
    """One input variable's box: as text, or as JSON for values that are not strings."""

    name: str
    value: str
    as_json: bool


def _fields(names: list[str], given: Mapping[str, Any]) -> list[Field]:
    out = []
    for name in [*names, *(k for k in given if k not in names)]:
        value = given.get(name, "")
        if isinstance(value, str):
            out.append(Field(name, value, False))
        else:
            out.append(Field(name, json.dumps(value, indent=2, ensure_ascii=False), True))
    return out


def _variables(form: MultiMapping[Any]) -> dict[str, Any]:
    """``var.NAME`` fields as text, ``json.NAME`` fields parsed (a 400 saying which is bad)."""
    found: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            continue
        if key.startswith("var."):
            found[key[4:]] = value
        elif key.startswith("json."):
            try:
                found[key[5:]] = json.loads(value)
            except ValueError as exc:
                raise DashboardError(
                    400, f"The variable {key[5:]} is not valid JSON: {exc}"
                ) from None
    return found


def _text_of(message: Mapping[str, Any]) -> str:
    """An answer message as plain text: its text parts, then any tool calls."""
    texts = [
        str(part.get("text", ""))
        for part in message.get("content") or ()
        if isinstance(part, Mapping) and part.get("type") == "text"
    ]
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            texts.append(f"\n[tool call] {function.get('name')}({function.get('arguments')})")
    return "".join(texts)


async def _version(request: web.Request, name: str, number: int | None) -> TemplateVersion:
    session = session_of(request)
    return await request.config_dict[STORE].get_version(session.workspace, name, version=number)


def _routes(origin: str | None) -> dict[str, str]:
    return {provider: provider_route(provider, origin).source for provider in PROVIDERS}


@routes.get("/playground")
async def playground(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[STORE]
    given: dict[str, Any] = {}
    provider = model = ""
    name = request.query.get("name", "")
    raw_version = request.query.get("version", "")
    from_request = request.query.get("request", "")
    if from_request:
        logged = await store.get_request(session.workspace, whole_number(from_request, "request"))
        if not logged.get("prompt_name"):
            raise DashboardError(
                400,
                f"Request #{from_request} was not made from a registry template, so the "
                "playground cannot run it again.",
            )
        name = str(logged["prompt_name"])
        raw_version = str(logged.get("prompt_version") or "")
        variables = logged.get("input_variables")
        given = variables if isinstance(variables, dict) else {}
        provider, model = str(logged.get("provider") or ""), str(logged.get("model") or "")
    if not name:
        raise DashboardError(400, "Which template? The address needs ?name=...")
    number = whole_number(raw_version, "version") if raw_version else None
    try:
        version = await _version(request, name, number)
    except NotFoundError:
        if not from_request or number is None:
            raise
        version = await _version(request, name, None)  # that version is gone: the latest
    return await _page(request, version, given, provider, model, request.query.get("compare"))


async def _page(
    request: web.Request,
    version: TemplateVersion,
    given: Mapping[str, Any],
    provider: str,
    model: str,
    compare: str | None,
    *,
    results: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> web.Response:
    session = session_of(request)
    detail = await request.config_dict[STORE].template_detail(
        session.workspace, version.prompt_name
    )
    template_model = version.metadata.get("model") or {}
    if provider == template_model.get("provider"):
        provider = ""
    if model == template_model.get("name") and not provider:
        model = ""
    origin = sandbox_origin(request, request.config_dict[CONFIG].sandbox)
    return render(
        request,
        "playground.html",
        status=status,
        nav="prompts",
        version=version,
        versions=[v.number for v in detail.versions],
        compare=whole_number(compare, "compare version") if compare else None,
        fields=_fields(template_variables(version.prompt_template), given),
        providers=PROVIDERS,
        provider=provider,
        model=model,
        template_model=template_model,
        routes=_routes(origin),
        default_models=bp.DEFAULT_MODELS,
        results=results or [],
    )


# -- running -----------------------------------------------------------------------------------


async def _events(
    request: web.Request, version: TemplateVersion, form: MultiMapping[Any]
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """One run as events: ``start``, ``text`` (what arrived since the last), ``done`` or
    ``error``. Errors are events too: the page says them where the answer would be."""
    session = session_of(request)
    provider = str(form.get("provider") or "").strip() or None
    model = str(form.get("model") or "").strip() or None
    origin = sandbox_origin(request, request.config_dict[CONFIG].sandbox)
    runner = request.config_dict[PROMPTS]
    try:
        variables = _variables(form)
    except DashboardError as exc:
        yield "error", {"message": exc.message, "request_id": None}
        return
    try:
        call = await runner.prepare(
            session.workspace, version, variables, origin=origin, provider=provider, model=model
        )
    except PromptLayerError as exc:
        yield "error", {"message": getattr(exc, "message", str(exc)), "request_id": None}
        return
    prepared = call.prepared
    yield (
        "start",
        {
            "version": version.number,
            "provider": prepared.plan.provider,
            "model": prepared.model.get("name"),
            "route": call.route.source,
        },
    )
    started = time.monotonic()
    shown = ""
    try:
        async for item in runner.stream(call, LogOptions(tags=[TAG])):
            if isinstance(item, StreamEnd):
                yield (
                    "done",
                    {
                        **await _facts(request, item.request_id),
                        "text": _text_of(item.message),
                        "seconds": duration(time.monotonic() - started),
                    },
                )
                return
            text = _text_of(item)
            if text.startswith(shown) and len(text) > len(shown):
                yield "text", {"text": text[len(shown) :]}
                shown = text
    except PromptRunError as exc:
        facts = await _facts(request, exc.request_id) if exc.request_id else {}
        yield "error", {**facts, "message": exc.message, "request_id": exc.request_id}


async def _facts(request: web.Request, request_id: int) -> dict[str, Any]:
    """What the page shows about a stored run: tokens, cost, status, its link."""
    session = session_of(request)
    store = request.config_dict[STORE]
    item = await store.get_request(session.workspace, request_id)
    cost, _ = request_cost(PriceTable(await store.model_prices(session.workspace)), item)
    return {
        "request_id": request_id,
        "request_url": f"{PREFIX}/requests/{request_id}",
        "status": item.get("status"),
        "input_tokens": item.get("input_tokens"),
        "output_tokens": item.get("output_tokens"),
        "cost": usd(cost) if cost is not None else "no price for this model",
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@routes.post("/playground/run")
async def run(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name") or "")
    if not name:
        raise DashboardError(400, "Which template? The form needs its name.")
    version = await _version(request, name, whole_number(str(form.get("version", "")), "version"))
    if "text/event-stream" in request.headers.get("Accept", ""):
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        async with contextlib.aclosing(_events(request, version, form)) as stream:
            try:
                async for event, data in stream:
                    await response.write(_sse(event, data))
            except ConnectionResetError:
                return response  # the page went away; the run is logged as it stopped
        await response.write_eof()
        return response
    # Without a script: run each version asked for, then show the page with the results.
    numbers = [version.number]
    compare = str(form.get("compare") or "")
    if compare:
        numbers.append(whole_number(compare, "compare"))
    results: list[dict[str, Any]] = [{} for _ in numbers]

    async def collect(index: int, number: int) -> None:
        shown = await _version(request, name, number)
        result: dict[str, Any] = {"version": number, "text": ""}
        async with contextlib.aclosing(_events(request, shown, form)) as stream:
            async for event, data in stream:
                if event == "text":
                    result["text"] += data["text"]
                else:
                    result.update(data, event=event)
        results[index] = result

    async with anyio.create_task_group() as tg:
        for index, number in enumerate(numbers):
            tg.start_soon(collect, index, number)
    return await _page(
        request, version, _variables(form), str(form.get("provider") or ""),
        str(form.get("model") or ""), compare or None, results=results,
    )  # fmt: skip
