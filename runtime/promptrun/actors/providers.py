"""ProviderWorker: one per provider and base URL, owning that provider's official async SDK client.

The client is created in the runtime's own event loop (an SDK client bound to a dead loop is
the peer's ``Event loop is closed`` bug) and closed at shutdown. Calls run in the caller's task
under the worker's concurrency limit. Provider keys are read by the SDKs from the environment
only; they never leave this module.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from promptrun._errors import PromptLayerError, PromptLayerValidationError

__all__ = ["PROVIDERS", "CallPlan", "ProviderWorker", "close_stream", "import_provider_sdks"]

logger = logging.getLogger("promptlayer")

PROVIDERS = ("openai", "openai.azure", "anthropic", "google")
_MODULES = {
    "openai": "openai",
    "openai.azure": "openai",
    "anthropic": "anthropic",
    "google": "google.genai",
}
_EXTRA = {
    "openai": "openai",
    "openai.azure": "openai",
    "anthropic": "anthropic",
    "google": "google",
}


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What to call: the provider, which of its APIs, and the kwargs."""

    provider: str
    api_type: str | None  # "chat-completions" (default) | "responses"
    template_type: str  # "chat" | "completion"
    llm_kwargs: dict[str, Any]


def _accepted_params(method: Callable[..., Any]) -> frozenset[str] | None:
    import inspect

    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params)


class ProviderWorker:
    """Calls one provider through its official SDK."""

    def __init__(self, provider: str, base_url: str | None, concurrency: int) -> None:
        if provider not in PROVIDERS:
            raise PromptLayerValidationError(
                f"provider {provider!r} is not supported; use one of {', '.join(PROVIDERS)} "
                "(any OpenAI-compatible server works as 'openai' with a base URL)"
            )
        self.provider = provider
        self.base_url = base_url
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._client: Any = None
        self._accepted: dict[Callable[..., Any], frozenset[str] | None] = {}
        self._warned: set[str] = set()
        self._methods: dict[tuple[str | None, str], Callable[..., Any]] = {}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await _imports.ensure()
        try:
            importlib.import_module(_MODULES[self.provider])
        except ImportError as exc:
            raise PromptLayerValidationError(
                f"running a {self.provider} prompt needs its SDK: "
                f"pip install 'promptrun[{_EXTRA[self.provider]}]' ({exc})"
            ) from exc
        self._client = self._make_client()
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    def _make_client(self) -> Any:
        base = self.base_url
        if self.provider in ("openai", "openai.azure"):
            import openai

            http = _aiohttp_client(openai)
            if self.provider == "openai":
                return openai.AsyncOpenAI(base_url=base, http_client=http)
            # azure_endpoint=None lets the SDK read AZURE_OPENAI_ENDPOINT
            return openai.AsyncAzureOpenAI(azure_endpoint=base, http_client=http)  # type: ignore[arg-type]
        if self.provider == "anthropic":
            import anthropic

            return anthropic.AsyncAnthropic(base_url=base, http_client=_aiohttp_client(anthropic))
        from google import genai
        from google.genai import types

        http_options = types.HttpOptions(base_url=base) if base else None
        if os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("true", "1"):
            return genai.Client(http_options=http_options)
        key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        return genai.Client(api_key=key, http_options=http_options)

    async def _close(self) -> None:
        client, self._client = self._client, None
        self._methods.clear()
        if client is None:
            return
        try:
            if self.provider == "google":
                await client.aio.aclose()
            else:
                await client.close()
        except Exception as exc:  # closing must never mask the real shutdown reason
            logger.debug("closing the %s client failed: %s", self.provider, exc)

    # -- calls ---------------------------------------------------------------------------
    def _method(self, plan: CallPlan) -> Callable[..., Any]:
        key = (plan.api_type, plan.template_type)
        method = self._methods.get(key)
        if method is None:
            method = self._methods[key] = self._find_method(plan)
        return method

    def _live(self) -> Any:
        client = self._client
        if client is None:
            raise PromptLayerError(
                f"the {self.provider} client was closed: the PromptLayer client shut down "
                "while this run was in flight"
            )
        return client

    def _find_method(self, plan: CallPlan) -> Callable[..., Any]:
        c = self._live()
        if self.provider == "anthropic":
            return c.messages.create  # type: ignore[no-any-return]
        if plan.api_type == "responses":
            return c.responses.create  # type: ignore[no-any-return]
        if plan.template_type == "completion":
            return c.completions.create  # type: ignore[no-any-return]
        return c.chat.completions.create  # type: ignore[no-any-return]

    def _fit(self, method: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Move parameters this SDK version no longer names into ``extra_body``."""
        if method not in self._accepted:
            self._accepted[method] = _accepted_params(method)
        accepted = self._accepted[method]
        if accepted is None:
            return kwargs
        unknown = [k for k in kwargs if k not in accepted]
        if not unknown:
            return kwargs
        fitted = {k: v for k, v in kwargs.items() if k in accepted}
        extra = dict(kwargs.get("extra_body") or {})
        for k in unknown:
            extra[k] = kwargs[k]
            if k not in self._warned:
                self._warned.add(k)
                logger.info(
                    "the installed %s SDK has no %r parameter; sending it in the request body",
                    self.provider,
                    k,
                )
        fitted["extra_body"] = extra
        return fitted

    async def call(self, plan: CallPlan) -> Any:
        """One non-streaming call; returns the SDK's response object."""
        async with self._limiter:
            if self.provider == "google":
                from promptrun.blueprint import google_call_args

                model, contents, config = google_call_args(plan.llm_kwargs)
                return await self._live().aio.models.generate_content(
                    model=model, contents=contents, config=config
                )
            method = self._method(plan)
            return await method(**self._fit(method, plan.llm_kwargs))

    async def open_stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        """Start a streaming call; returns the SDK's async iterator of chunks.

        The limiter slot is held only while the stream is being opened: a slow consumer must
        not starve other callers of the provider.
        """
        async with self._limiter:
            if self.provider == "google":
                from promptrun.blueprint import google_call_args

                model, contents, config = google_call_args(plan.llm_kwargs)
                stream = await self._live().aio.models.generate_content_stream(
                    model=model, contents=contents, config=config
                )
                return stream  # type: ignore[no-any-return]
            kwargs = dict(plan.llm_kwargs)
            kwargs["stream"] = True
            if self.provider.startswith("openai") and plan.api_type != "responses":
                # Usage arrives only when asked for; the log needs it.
                kwargs.setdefault("stream_options", {"include_usage": True})
            method = self._method(plan)
            return await method(**self._fit(method, kwargs))  # type: ignore[no-any-return]


class _SdkImports:
    """Imports every installed provider SDK once per process, together, in a worker thread.

    Importing takes 0.4-0.9 s per SDK, too long for the event loop. But a thread importing an
    SDK while SDK code runs in the loop is unsafe: the SDKs share httpx and pydantic, and code
    that looks at a half-imported module (openai checks ``sys.modules["httpx"]`` on every
    request) fails with "partially initialized module". So the first provider worker imports
    all of them at once, before any SDK code has run, and later workers find them imported.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = False

    async def ensure(self) -> None:
        if not self.done:
            await anyio.to_thread.run_sync(self._import_all)

    def _import_all(self) -> None:
        with self._lock:
            if self.done:
                return
            for name in dict.fromkeys(_MODULES.values()):
                try:
                    if importlib.util.find_spec(name) is not None:
                        importlib.import_module(name)
                except ImportError:
                    continue  # not installed: the worker that needs it says so
            self.done = True


_imports = _SdkImports()


async def import_provider_sdks() -> None:
    """Import the installed provider SDKs (once per process), off the event loop."""
    await _imports.ensure()


async def close_stream(stream: Any) -> None:
    """Close a provider stream whatever its kind (SDK stream object or async generator)."""
    for name in ("close", "aclose"):
        closer = getattr(stream, name, None)
        if closer is not None:
            try:
                await closer()
            except Exception as exc:
                logger.debug("closing a provider stream failed: %s", exc)
            return


def _aiohttp_client(sdk: Any) -> Any:
    """The SDK's aiohttp transport when its extra is installed (about 30% less CPU per call)."""
    factory = getattr(sdk, "DefaultAioHttpClient", None)
    if factory is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return factory()
    except (RuntimeError, ImportError):
        return None
