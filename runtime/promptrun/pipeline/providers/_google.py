"""google-genai: the Gemini API, and Vertex AI (Gemini through google-genai, Claude through
the anthropic SDK's ``AsyncAnthropicVertex``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from promptrun.pipeline.providers._anthropic import (
    anthropic_call,
    anthropic_key_problem,
    anthropic_stream,
)
from promptrun.pipeline.providers._base import Adapter, CallPlan, KeyProblem, Wire, status_of
from promptrun.pipeline.providers._table import SANDBOX_KEY

__all__ = ["GoogleAdapter", "VertexAdapter"]

SANDBOX_PROJECT = "promptrun-sandbox"
SANDBOX_LOCATION = "us-central1"


async def genai_call(client: Any, plan: CallPlan) -> Any:
    from promptrun.blueprint import google_call_args

    model, contents, config = google_call_args(plan.llm_kwargs)
    return await client.aio.models.generate_content(model=model, contents=contents, config=config)


async def genai_stream(client: Any, plan: CallPlan) -> AsyncIterator[Any]:
    from promptrun.blueprint import google_call_args

    model, contents, config = google_call_args(plan.llm_kwargs)
    stream = await client.aio.models.generate_content_stream(
        model=model, contents=contents, config=config
    )
    return stream  # type: ignore[no-any-return]


def genai_key_problem(exc: BaseException, key_var: str) -> KeyProblem | None:
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        status = status_of(exc)
        if status in (401, 403) or (status == 400 and "API key" in str(exc)):
            return KeyProblem("refused", key_var, status)
        return None
    if isinstance(exc, ValueError) and ("API key" in str(exc) or "Missing key" in str(exc)):
        return KeyProblem("missing", key_var)
    return None


def _uses_vertex() -> bool:
    return os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("true", "1")


def gemini_key(sandbox: bool) -> str | None:
    """The Gemini API key both paths send: the sandbox's placeholder, else the environment's
    (``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``: promptrun's order, which its docs name)."""
    if sandbox:
        return SANDBOX_KEY
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


class GoogleAdapter(Adapter):
    """``client.aio.models.generate_content`` (and ``_stream``) of google-genai."""

    lazy_stream = True
    wire_providers = frozenset({"google"})
    wire_module = "promptrun.pipeline.providers._google_native"

    def open_wire(self, session: Any, base_url: str | None, sandbox: bool) -> Wire | None:
        key = gemini_key(sandbox)
        if not key or key.strip().startswith("auth_tokens/") or _uses_vertex():
            return None  # no key (the SDK says what is missing), ephemeral tokens, Vertex
        from promptrun.pipeline.providers._google_native import GoogleWire, sdk_verified

        if not sdk_verified():
            return None  # an SDK older than the one the differential suite checks: the SDK
        return GoogleWire(session, base_url, key)

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        from google import genai
        from google.genai import types

        http_options = types.HttpOptions(base_url=base_url) if base_url else None
        if not sandbox and _uses_vertex():
            return genai.Client(http_options=http_options)
        return genai.Client(api_key=gemini_key(sandbox), http_options=http_options)

    async def call(self, client: Any, plan: CallPlan) -> Any:
        return await genai_call(client, plan)

    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        return await genai_stream(client, plan)

    async def close(self, client: Any) -> None:
        await client.aio.aclose()

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        return genai_key_problem(exc, self.info.key_var)


def _is_claude(plan: CallPlan) -> bool:
    return "claude" in str(plan.llm_kwargs.get("model") or "").lower()


class VertexAdapter(Adapter):
    """Vertex AI: Gemini models through ``genai.Client(vertexai=True)``, Claude models through
    ``AsyncAnthropicVertex``, each with Application Default Credentials.

    Project and location: ``GOOGLE_CLOUD_PROJECT`` and ``GOOGLE_CLOUD_LOCATION`` (Claude also
    reads ``ANTHROPIC_VERTEX_PROJECT_ID`` and ``CLOUD_ML_REGION``). A base URL (the template's
    ``provider_base_url``, the client's ``provider_base_urls`` or ``GOOGLE_VERTEX_BASE_URL``)
    is the Vertex endpoint's root; Claude's client gets it with ``/v1`` appended.
    """

    lazy_stream = True

    def client_key(self, plan: CallPlan) -> Any:
        return "claude" if _is_claude(plan) else "gemini"

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        base = base_url or os.environ.get("GOOGLE_VERTEX_BASE_URL")
        if _is_claude(plan):
            return await self._open_claude(base, sandbox)
        from google import genai
        from google.genai import types

        http_options = types.HttpOptions(base_url=base) if base else None
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        location = os.environ.get("GOOGLE_CLOUD_LOCATION")
        credentials = None
        if sandbox:
            from google.oauth2.credentials import Credentials

            credentials = Credentials(token=SANDBOX_KEY)  # type: ignore[no-untyped-call]
            project, location = project or SANDBOX_PROJECT, location or SANDBOX_LOCATION
        if base and not project:
            # genai skips finding the project when a base URL is set; ask ADC, off the loop.
            import anyio
            import google.auth

            _, project = await anyio.to_thread.run_sync(google.auth.default)
        return genai.Client(
            vertexai=True,
            project=project,
            location=location,
            credentials=credentials,
            http_options=http_options,
        )

    async def _open_claude(self, base: str | None, sandbox: bool) -> Any:
        import anthropic

        kwargs: dict[str, Any] = {}
        if base and not os.environ.get("ANTHROPIC_VERTEX_BASE_URL"):
            kwargs["base_url"] = base.rstrip("/") + "/v1"
        region = os.environ.get("CLOUD_ML_REGION") or os.environ.get("GOOGLE_CLOUD_LOCATION")
        project = os.environ.get("ANTHROPIC_VERTEX_PROJECT_ID") or os.environ.get(
            "GOOGLE_CLOUD_PROJECT"
        )
        if sandbox:
            kwargs["access_token"] = SANDBOX_KEY
            region, project = region or SANDBOX_LOCATION, project or SANDBOX_PROJECT
        if region:
            kwargs["region"] = region
        if project:
            kwargs["project_id"] = project
        return anthropic.AsyncAnthropicVertex(**kwargs)

    async def call(self, client: Any, plan: CallPlan) -> Any:
        if _is_claude(plan):
            return await anthropic_call(client, plan)
        return await genai_call(client, plan)

    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        if _is_claude(plan):
            return await anthropic_stream(client, plan)
        return await genai_stream(client, plan)

    async def close(self, client: Any) -> None:
        aio = getattr(client, "aio", None)
        await (aio.aclose() if aio is not None else client.close())

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        import google.auth.exceptions

        text = str(exc)
        if isinstance(exc, google.auth.exceptions.RefreshError):
            return KeyProblem("refused", self.info.key_var)
        if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
            return KeyProblem("missing", self.info.key_var)
        if isinstance(exc, ValueError) and "region" in text:
            return KeyProblem("missing", "GOOGLE_CLOUD_LOCATION")
        if isinstance(exc, ValueError) and ("project" in text.lower()):
            return KeyProblem("missing", "GOOGLE_CLOUD_PROJECT")
        return genai_key_problem(exc, self.info.key_var) or anthropic_key_problem(
            exc, self.info.key_var
        )
