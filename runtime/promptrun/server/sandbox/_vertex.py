"""Vertex-AI-compatible sandbox routes under ``/vertex``, and the OpenAI-compatible ones of
Mistral and OpenRouter.

Vertex (``GOOGLE_VERTEX_BASE_URL`` for google-genai; the same plus ``/v1`` for
``AsyncAnthropicVertex``):

- ``POST /{version}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent``
  and ``:streamGenerateContent``: Gemini, as the Gemini sandbox answers.
- ``POST .../publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``: Claude,
  an Anthropic Messages body with ``anthropic_version`` ``vertex-2023-10-16``.
- ``POST /token``: an OAuth 2.0 token endpoint. Point ``token_uri`` of a service account
  key file (``GOOGLE_APPLICATION_CREDENTIALS``; any RSA key) here and google-auth gets its
  access tokens offline; the signed assertion is not verified.

Vertex requests need ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import itertools

from aiohttp import web

from promptrun.server.sandbox import _anthropic, _google
from promptrun.server.sandbox._common import (
    Call,
    ProviderSpec,
    error_response,
    json_response,
    open_call,
)
from promptrun.server.sandbox._openai import _error_body as openai_error_body
from promptrun.server.sandbox._openai import chat_completions

__all__ = ["add_compatible_routes", "add_vertex_routes"]

VERTEX = ProviderSpec("vertex", _google.error_body)
VERTEX_CLAUDE = ProviderSpec("vertex", _anthropic.error_body)
MISTRAL = ProviderSpec("mistral", openai_error_body, stream_usage=True)
OPENROUTER = ProviderSpec("openrouter", openai_error_body, stream_usage=True)
_tokens = itertools.count(1)


def _bearer(request: web.Request) -> bool:
    auth = request.headers.get("Authorization", "")
    return auth.startswith("Bearer ") and bool(auth[7:].strip())


async def publisher_model(request: web.Request) -> web.StreamResponse:
    """Dispatch a Vertex ``publishers/{publisher}/models/{model}:{action}`` request."""
    publisher = request.match_info["publisher"]
    spec = VERTEX_CLAUDE if publisher == "anthropic" else VERTEX
    if not _bearer(request):
        return error_response(spec, 401, "Vertex AI wants an OAuth access token (Bearer).")
    if publisher == "google":
        return await _google.model_action(request, VERTEX)
    model, _, action = request.match_info["model_action"].partition(":")
    if publisher != "anthropic" or action not in ("rawPredict", "streamRawPredict"):
        return error_response(spec, 404, f"{publisher}/{action} is not served by the sandbox.")
    call = await open_call(request, spec, action, required=("messages", "max_tokens"), stream=None)
    if not isinstance(call, Call):
        return call
    if not call.body.get("anthropic_version"):
        return error_response(spec, 400, "anthropic_version is required on Vertex AI.")
    return await _anthropic.send_answer(call, model)


async def token(request: web.Request) -> web.Response:
    """Google's OAuth token endpoint, enough for google-auth's refresh grant."""
    form = await request.post()
    if form.get("grant_type") not in (
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ):
        return json_response(
            {"error": "unsupported_grant_type", "error_description": "Use a refresh_token grant."},
            400,
        )
    return json_response(
        {
            "access_token": f"ya29.sandbox-{next(_tokens)}",
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
        }
    )


def add_vertex_routes(app: web.Application) -> None:
    """Serve Vertex AI's Gemini and Claude prediction paths and a token endpoint."""
    path = "/vertex/{version}/projects/{project}/locations/{location}"
    app.router.add_post(path + "/publishers/{publisher}/models/{model_action}", publisher_model)
    app.router.add_post("/vertex/token", token)


def add_compatible_routes(app: web.Application) -> None:
    """Mistral's and OpenRouter's chat completions (OpenAI's shape; usage always streamed)."""

    async def mistral_chat(request: web.Request) -> web.StreamResponse:
        return await chat_completions(request, MISTRAL)

    async def openrouter_chat(request: web.Request) -> web.StreamResponse:
        return await chat_completions(request, OPENROUTER)

    app.router.add_post("/mistral/v1/chat/completions", mistral_chat)
    app.router.add_post("/openrouter/api/v1/chat/completions", openrouter_chat)
