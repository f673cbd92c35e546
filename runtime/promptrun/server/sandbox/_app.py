"""The sandbox application: every provider's routes plus ``/_control``."""

from __future__ import annotations

import msgspec
from aiohttp import web

from promptrun.server.sandbox._anthropic import add_anthropic_routes
from promptrun.server.sandbox._bedrock import add_bedrock_routes
from promptrun.server.sandbox._common import STATE_KEY, json_response
from promptrun.server.sandbox._google import add_google_routes
from promptrun.server.sandbox._openai import (
    AZURE,
    chat_completions,
    completions,
    get_model,
    list_models,
)
from promptrun.server.sandbox._responses import responses
from promptrun.server.sandbox._state import ControlError, SandboxSettings, SandboxState
from promptrun.server.sandbox._vertex import add_compatible_routes, add_vertex_routes

__all__ = ["create_sandbox_app"]


async def _get_control(request: web.Request) -> web.Response:
    return json_response(request.app[STATE_KEY].snapshot())


async def _post_control(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        state.apply_control(msgspec.json.decode(await request.read()))
    except (msgspec.DecodeError, ControlError) as exc:
        return json_response({"error": str(exc)}, status=400)
    return json_response(state.snapshot())


async def _delete_control(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.reset()
    return json_response(state.snapshot())


def _add_openai_routes(app: web.Application) -> None:
    app.router.add_post("/openai/v1/chat/completions", chat_completions)
    app.router.add_post("/openai/v1/completions", completions)
    app.router.add_post("/openai/v1/responses", responses)
    app.router.add_get("/openai/v1/models", list_models)
    app.router.add_get("/openai/v1/models/{model}", get_model)


def _add_azure_routes(app: web.Application) -> None:
    # The same handlers, counted and failed as "azure"; the deployment names the model.
    async def azure_chat(request: web.Request) -> web.StreamResponse:
        return await chat_completions(request, AZURE)

    async def azure_completions(request: web.Request) -> web.StreamResponse:
        return await completions(request, AZURE)

    async def azure_responses(request: web.Request) -> web.StreamResponse:
        return await responses(request, AZURE)

    deployment = "/azure/openai/deployments/{deployment}"
    app.router.add_post(deployment + "/chat/completions", azure_chat)
    app.router.add_post(deployment + "/completions", azure_completions)
    app.router.add_post("/azure/openai/responses", azure_responses)


def create_sandbox_app(settings: SandboxSettings | None = None) -> web.Application:
    """Build the offline LLM providers; mount with ``app.add_subapp("/sandbox", ...)``.

    Point the official SDKs at ``<server>/sandbox/openai/v1``, ``<server>/sandbox/azure``
    (as ``azure_endpoint``), ``<server>/sandbox/anthropic``, ``<server>/sandbox/google``,
    ``<server>/sandbox/bedrock``, ``<server>/sandbox/vertex``, ``<server>/sandbox/mistral``
    and ``<server>/sandbox/openrouter/api/v1`` with any non-empty key (see the package
    docstring for how each authenticates). ``/sandbox/_control`` reads (GET), changes (POST) and resets
    (DELETE) the settings, queued failures and request statistics.
    """
    app = web.Application()
    app[STATE_KEY] = SandboxState(settings or SandboxSettings())
    _add_openai_routes(app)
    _add_azure_routes(app)
    add_anthropic_routes(app)
    add_google_routes(app)
    add_bedrock_routes(app)
    add_vertex_routes(app)
    add_compatible_routes(app)
    app.router.add_get("/_control", _get_control)
    app.router.add_post("/_control", _post_control)
    app.router.add_delete("/_control", _delete_control)
    return app
