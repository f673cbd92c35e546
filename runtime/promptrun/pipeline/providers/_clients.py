"""ProviderClients: the SDK clients a runtime (or the server) calls providers with.

Not an actor: a plain object guarded by its event loop. It keeps one :class:`_Route` per
provider, base URL and sandbox flag, each with its own concurrency limit and its SDK clients
(one per set of client options a template names). Calls run in the caller's task.

- A route is made on its first call, in the running loop (an SDK client bound to a dead loop
  is the peer's ``Event loop is closed`` bug), after its SDK is imported off the loop.
- A client that cannot be created (a missing key, an SDK not installed) is not kept: the call
  fails with an error that says what to set or install, the run is logged as failed like any
  failed call, and the next call tries again, so exporting the key in a long-lived process
  works. Nothing else is affected.
- :meth:`ProviderClients.aclose` closes every client; a call that starts after it fails.

Provider keys are read from the environment only (or, for a sandboxed route, are the
sandbox's placeholder); they never leave this package.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import anyio

from promptrun._errors import PromptLayerError, PromptLayerValidationError
from promptrun.pipeline.providers._adapters import adapter_for
from promptrun.pipeline.providers._base import Adapter, CallPlan, Wire
from promptrun.pipeline.providers._keys import explain_key_problem

__all__ = ["ProviderClients", "close_stream", "import_provider_sdks"]

logger = logging.getLogger("promptlayer")

RouteKey = tuple[str, str | None, bool]


class ProviderClients:
    """Calls providers through their SDKs: ``call(plan)`` and ``open_stream(plan)``.

    ``concurrency`` limits the calls in flight per provider and base URL. ``session``: where
    native transports get the pooled aiohttp session (a callable, as the session is made when
    the runtime starts); None calls every provider through its SDK.
    """

    def __init__(self, concurrency: int, *, session: Callable[[], Any] | None = None) -> None:
        self._concurrency = concurrency
        self._session = session
        self._routes: dict[RouteKey, _Route] = {}
        self._opening = anyio.Lock()
        self._closed = False

    async def call(self, plan: CallPlan) -> Any:
        """One non-streaming call; returns the SDK's response object."""
        return await (await self._route(plan)).call(plan)

    async def open_stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        """Start a streaming call; returns the SDK's async iterator of chunks."""
        return await (await self._route(plan)).open_stream(plan)

    async def aclose(self) -> None:
        """Close every client (shielded: closing never masks why the owner stopped)."""
        self._closed = True
        routes, self._routes = list(self._routes.values()), {}
        with anyio.CancelScope(shield=True):
            for route in routes:
                await route.aclose()

    async def _route(self, plan: CallPlan) -> _Route:
        key = (plan.provider, plan.base_url, plan.sandbox)
        route = self._routes.get(key)
        if route is not None:
            return route
        async with self._opening:
            self._check_open(plan.provider)
            route = self._routes.get(key)
            if route is None:
                route = _Route(
                    plan.provider, plan.base_url, plan.sandbox, self._concurrency, self._session
                )
                await route.import_sdk()
                self._check_open(plan.provider)
                self._routes[key] = route
        return route

    def _check_open(self, provider: str) -> None:
        if self._closed:
            raise PromptLayerError(
                f"the {provider} client was closed: the PromptLayer client shut down "
                "while this run was in flight"
            )


class _Route:
    """One provider at one base URL: its adapter, its concurrency limit, its clients, and its
    native transport when there is one (chosen per plan: :meth:`Wire.covers`)."""

    def __init__(
        self,
        provider: str,
        base_url: str | None,
        sandbox: bool,
        concurrency: int,
        session: Callable[[], Any] | None = None,
    ):
        self.adapter: Adapter = adapter_for(provider)
        self._session = session
        self._wire: Wire | None = None
        self.provider = provider
        self.base_url = base_url
        self.sandbox = sandbox
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._clients: dict[Hashable, Any] = {}
        self._opening = anyio.Lock()
        self._closed = False

    async def import_sdk(self) -> None:
        modules = self.adapter.info.modules
        wire = self.adapter.wire_module
        if self._session is not None and self.provider in self.adapter.wire_providers and wire:
            # A native transport needs only its own SDK (its models and exceptions); the
            # other SDKs are imported before this route opens an SDK client (_client).
            modules = (*modules, wire)
        else:
            await _imports.ensure()
        for module in modules:
            try:
                await anyio.to_thread.run_sync(importlib.import_module, module)
            except ImportError as exc:
                raise PromptLayerValidationError(
                    f"running a {self.provider} prompt needs its SDK: "
                    f"pip install 'promptrun[{self.adapter.info.extra}]' ({exc})"
                ) from exc

    async def aclose(self) -> None:
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await self.adapter.close(client)
            except Exception as exc:  # closing must never mask the real shutdown reason
                logger.debug("closing the %s client failed: %s", self.provider, exc)

    async def _client(self, plan: CallPlan) -> Any:
        key = self.adapter.client_key(plan)
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._opening:
            if self._closed:
                raise PromptLayerError(
                    f"the {self.provider} client was closed: the PromptLayer client shut down "
                    "while this run was in flight"
                )
            client = self._clients.get(key)
            if client is None:
                # No SDK code runs before every SDK is imported (see _SdkImports).
                await _imports.ensure()
                # One per distinct set of client options, which only templates name: as many
                # as the registry holds, so they are kept (closing one could break a call).
                client = await self.adapter.open(self.base_url, plan, self.sandbox)
                self._clients[key] = client
        return client

    def _explained(self, exc: Exception, plan: CallPlan) -> BaseException | None:
        problem = self.adapter.key_problem(exc)
        if problem is None:
            return None
        return explain_key_problem(exc, problem, self.adapter.info, plan.template)

    def _native(self, plan: CallPlan, stream: bool) -> Wire | None:
        """The native transport for ``plan``, or None for the SDK."""
        wire = self._wire
        if wire is None:
            session = self._session() if self._session is not None else None
            if session is None:
                return None
            # Made once; until then (no key in the environment) the SDK is asked each time.
            wire = self._wire = self.adapter.open_wire(session, self.base_url, self.sandbox)
            if wire is None:
                return None
        return wire if wire.covers(plan, stream) else None

    async def call(self, plan: CallPlan) -> Any:
        async with self._limiter:
            try:
                wire = self._native(plan, False)
                if wire is not None:
                    return await wire.call(plan)
                return await self.adapter.call(await self._client(plan), plan)
            except Exception as exc:
                explained = self._explained(exc, plan)
                if explained is None or explained is exc:
                    raise
                raise explained from exc

    async def open_stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        # The limiter slot is held only while the stream is being opened: a slow consumer
        # must not starve other callers of the provider.
        async with self._limiter:
            try:
                wire = self._native(plan, True)
                if wire is not None:
                    stream = await wire.stream(plan)
                else:
                    stream = await self.adapter.stream(await self._client(plan), plan)
            except Exception as exc:
                explained = self._explained(exc, plan)
                if explained is None or explained is exc:
                    raise
                raise explained from exc
        if self.adapter.lazy_stream:
            return self._explaining(stream, plan)
        return stream

    async def _explaining(self, stream: AsyncIterator[Any], plan: CallPlan) -> AsyncIterator[Any]:
        """A stream whose SDK sends the request (and authenticates) on the first read: its
        errors get the same explanation as a failed call."""
        try:
            async for chunk in stream:
                yield chunk
        except Exception as exc:
            explained = self._explained(exc, plan)
            if explained is None or explained is exc:
                raise
            raise explained from exc
        finally:
            await close_stream(stream)


class _SdkImports:
    """Imports every installed provider SDK once per process, together, in a worker thread.

    Importing takes 0.4-0.9 s per SDK, too long for the event loop. But a thread importing an
    SDK while SDK code runs in the loop is unsafe: the SDKs share httpx and pydantic, and code
    that looks at a half-imported module (openai checks ``sys.modules["httpx"]`` on every
    request) fails with "partially initialized module". So the first route imports all of
    them at once, before any SDK code has run, and later routes find them imported.
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
            for name in _SHARED:
                try:
                    if importlib.util.find_spec(name) is not None:
                        importlib.import_module(name)
                except ImportError:
                    continue  # not installed: the route that needs it says so
            self.done = True


_imports = _SdkImports()
# The SDKs built on httpx and pydantic; the others (boto3, google-auth) are imported by the
# route that needs them, also off the loop.
_SHARED = ("openai", "anthropic", "google.genai", "mistralai.client")


async def import_provider_sdks() -> None:
    """Import the installed provider SDKs (once per process), off the event loop."""
    await _imports.ensure()


async def close_stream(stream: Any) -> None:
    """Close a provider stream whatever its kind (SDK stream object or async generator)."""
    for name in ("close", "aclose"):
        closer = getattr(stream, name, None)
        if closer is not None:
            try:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
            except Exception as exc:
                logger.debug("closing a provider stream failed: %s", exc)
            return
