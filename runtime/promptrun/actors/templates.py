"""TemplateActor: the prompt registry as seen by one client, with a TTL cache.

Templates are fetched unrendered (``skip_input_variable_rendering``) and rendered by the caller,
so one entry serves every set of input variables. Concurrent misses for one key share one
fetch; an expired entry is served at once while one background refresh runs; when that refresh
fails with a transient error the stale entry keeps being served.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
from anyio.abc import TaskGroup, TaskStatus

from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
    PromptLayerError,
    PromptLayerInternalServerError,
    PromptLayerNotFoundError,
    PromptLayerRateLimitError,
)
from promptrun._http import ApiTransport
from promptrun._retry import CALLER_POLICY, call_with_retries

__all__ = ["TemplateActor", "TemplateKey"]

logger = logging.getLogger("promptlayer")

_TRANSIENT = (
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
)


@dataclass(frozen=True, slots=True)
class TemplateKey:
    name: str
    version: int | None = None
    label: str | None = None
    provider: str | None = None
    model: str | None = None

    def params(self) -> dict[str, Any]:
        body: dict[str, Any] = {"skip_input_variable_rendering": True}
        if self.version is not None:
            body["version"] = self.version
        if self.label is not None:
            body["label"] = self.label
        if self.provider is not None:
            body["provider"] = self.provider
        if self.model is not None:
            body["model"] = self.model
        return body


@dataclass(slots=True)
class _Entry:
    value: dict[str, Any]
    fetched_at: float
    refresh_after: float  # when a failed refresh may be tried again


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: dict[str, Any] | None = None
        self.error: BaseException | None = None


class TemplateActor:
    """Answers ``get(key)`` from its cache when it can; fetches once per key when it cannot."""

    def __init__(self, transport: ApiTransport, *, ttl: float, max_entries: int) -> None:
        self._transport = transport
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[TemplateKey, _Entry] = OrderedDict()
        self._flights: dict[TemplateKey, _Flight] = {}
        self._refreshing: set[TemplateKey] = set()
        self._tg: TaskGroup | None = None
        self.fetches = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    # -- the caller's side -------------------------------------------------------------
    async def get(self, key: TemplateKey) -> dict[str, Any]:
        """The unrendered template for ``key``; callers must not mutate it."""
        entry = self._entries.get(key)
        if entry is not None:
            now = time.monotonic()
            if now - entry.fetched_at < self._ttl:
                self._entries.move_to_end(key)
                return entry.value
            if key not in self._refreshing and now >= entry.refresh_after:
                self._refreshing.add(key)
                self._spawn(self._refresh, key)
            return entry.value
        return await self._shared_fetch(key)

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k.name == name]:
            del self._entries[key]

    # -- fetching ----------------------------------------------------------------------
    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._tg is None:
            raise RuntimeError("TemplateActor is not running")
        self._tg.start_soon(fn, *args)

    async def _shared_fetch(self, key: TemplateKey) -> dict[str, Any]:
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight()
            self._flights[key] = flight
            # The fetch runs in the actor's task group, so a caller that gives up does not
            # cancel it for the others waiting on the same key.
            self._spawn(self._fly, key, flight)
        await flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.value is not None
        return flight.value

    async def _fly(self, key: TemplateKey, flight: _Flight) -> None:
        try:
            flight.value = await self._fetch(key, quiet=False)
            self._store(key, flight.value)
        except Exception as exc:
            flight.error = exc
        finally:
            del self._flights[key]
            flight.done.set()

    async def _refresh(self, key: TemplateKey) -> None:
        try:
            value = await self._fetch(key, quiet=True)
        except PromptLayerNotFoundError:
            self._entries.pop(key, None)  # deleted upstream: stop serving it
        except _TRANSIENT as exc:
            entry = self._entries.get(key)
            if entry is not None:
                entry.refresh_after = time.monotonic() + min(max(self._ttl, 1.0), 30.0)
            logger.debug("serving stale template %r after a failed refresh: %s", key.name, exc)
        except PromptLayerError as exc:
            logger.warning("refreshing template %r failed: %s", key.name, exc)
        else:
            self._store(key, value)
        finally:
            self._refreshing.discard(key)

    async def _fetch(self, key: TemplateKey, *, quiet: bool) -> dict[str, Any]:
        self.fetches += 1
        context = f"fetching prompt template {key.name!r}"
        body = key.params()
        body["api_key"] = self._transport.api_key

        async def once() -> Any:
            return await self._transport.request(
                "POST", f"/prompt-templates/{quote(key.name, safe='')}", body=body, context=context
            )

        value = await call_with_retries(CALLER_POLICY, context, once, quiet=quiet)
        if not isinstance(value, dict):
            raise PromptLayerNotFoundError(f"Prompt template {key.name!r} not found.")
        return value

    def _store(self, key: TemplateKey, value: dict[str, Any]) -> None:
        if self._ttl <= 0:
            return
        now = time.monotonic()
        self._entries[key] = _Entry(value, now, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
