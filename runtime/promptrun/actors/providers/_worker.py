"""ProviderWorker: one per provider and base URL, owning that provider's SDK clients.

Clients are created in the runtime's own event loop (an SDK client bound to a dead loop is
the peer's ``Event loop is closed`` bug), on first use, and closed at shutdown. A client that
cannot be created (a missing key) is not kept: the call fails, is logged like any failed
call, and the next call tries again, so exporting the key in a long-lived process works.
Calls run in the caller's task under the worker's concurrency limit. Provider keys are read
from the environment only; they never leave this package.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import AsyncIterator, Hashable
from typing import Any

import anyio
from anyio.abc import TaskStatus

from promptrun._errors import PromptLayerError, PromptLayerValidationError
from promptrun.actors.providers._adapters import adapter_for
from promptrun.actors.providers._base import Adapter, CallPlan
from promptrun.actors.providers._keys import explain_key_problem

__all__ = ["ProviderWorker", "close_stream", "import_provider_sdks"]

logger = logging.getLogger("promptlayer")


class ProviderWorker:
    """Calls one provider through its SDK."""

    def __init__(
        self, provider: str, base_url: str | None, concurrency: int, *, sandbox: bool = False
    ) -> None:
        self.adapter: Adapter = adapter_for(provider)
        self.provider = provider
        self.base_url = base_url
        self.sandbox = sandbox
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._clients: dict[Hashable, Any] = {}
        self._opening = anyio.Lock()
        self._closed = False

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await _imports.ensure()
        for module in self.adapter.info.modules:
            try:
                await anyio.to_thread.run_sync(importlib.import_module, module)
            except ImportError as exc:
                raise PromptLayerValidationError(
                    f"running a {self.provider} prompt needs its SDK: "
                    f"pip install 'promptrun[{self.adapter.info.extra}]' ({exc})"
                ) from exc
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _close(self) -> None:
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

    async def call(self, plan: CallPlan) -> Any:
        """One non-streaming call; returns the SDK's response object."""
        async with self._limiter:
            try:
                return await self.adapter.call(await self._client(plan), plan)
            except Exception as exc:
                explained = self._explained(exc, plan)
                if explained is None or explained is exc:
                    raise
                raise explained from exc

    async def open_stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        """Start a streaming call; returns the SDK's async iterator of chunks.

        The limiter slot is held only while the stream is being opened: a slow consumer must
        not starve other callers of the provider.
        """
        async with self._limiter:
            try:
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
            for name in _SHARED:
                try:
                    if importlib.util.find_spec(name) is not None:
                        importlib.import_module(name)
                except ImportError:
                    continue  # not installed: the worker that needs it says so
            self.done = True


_imports = _SdkImports()
# The SDKs built on httpx and pydantic; the others (boto3, google-auth) are imported by the
# worker that needs them, also off the loop.
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
