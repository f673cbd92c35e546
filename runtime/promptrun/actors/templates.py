"""TemplateCache: the prompt registry as seen by one client, with a TTL cache.

Templates are fetched unrendered (``skip_input_variable_rendering``) and rendered by the caller,
so one entry serves every set of input variables. The policy, per key:

- within the TTL the cache answers, with no network;
- after it, the next caller waits for a fresh fetch, and every caller of that key waits for the
  same one (single-flight);
- the stale entry is served only when the registry fails (5xx, 429, connection error, timeout),
  with a WARNING naming the template and the error, and the registry is not asked again for that
  key until a short back-off has passed (so an outage costs one failed fetch per back-off, not
  one per caller);
- with ``refresh="background"`` an expired entry is served at once while one background fetch
  runs (stale-while-revalidate), but only up to ``max_stale`` seconds past its TTL; an older
  entry makes the caller wait, as above.

The clock is injectable (``clock=``), so the policy is tested without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
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
from promptrun._retry import CALLER_POLICY, NO_RETRY_POLICY, call_with_retries

__all__ = ["CacheRefresh", "TemplateCache", "TemplateKey"]

logger = logging.getLogger("promptlayer")

CacheRefresh = Literal["wait", "background"]
CACHE_REFRESH_MODES: tuple[CacheRefresh, ...] = ("wait", "background")

_TRANSIENT = (
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
)
_BACKOFF_MAX = 30.0


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
    retry_at: float  # after a failed fetch: the registry is not asked again before this


class _Flight:
    """One fetch of one key, shared by everyone who needs it."""

    __slots__ = ("done", "error", "generation", "value", "waiters")

    def __init__(self, generation: int) -> None:
        self.generation = generation  # the cache's, when the fetch was asked for
        self.done = anyio.Event()
        self.value: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.waiters = 0


class TemplateCache:
    """Answers ``get(key)`` from its cache when it can; fetches once per key when it cannot."""

    def __init__(
        self,
        transport: ApiTransport,
        *,
        ttl: float,
        max_entries: int,
        refresh: CacheRefresh = "wait",
        max_stale: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._ttl = ttl
        self._max_entries = max_entries
        self._refresh = refresh
        # Background mode serves an expired entry for at most this long past its TTL.
        self._max_stale = ttl if max_stale is None else max_stale
        self.clock = clock
        self._entries: OrderedDict[TemplateKey, _Entry] = OrderedDict()
        self._flights: dict[TemplateKey, _Flight] = {}
        self._generation = 0  # bumped by invalidate(): a fetch begun before it is not stored
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
        if entry is None:
            logger.debug("template %r: not in the cache, fetching it", key.name)
            return await self._shared_fetch(key)
        now = self.clock()
        age = now - entry.fetched_at
        if age < self._ttl:
            self._entries.move_to_end(key)
            logger.debug("template %r: served from the cache (%.1f s old)", key.name, age)
            return entry.value
        if now < entry.retry_at:
            logger.debug("template %r: the registry failed recently, serving it stale", key.name)
            return entry.value
        if self._refresh == "background" and age < self._ttl + self._max_stale:
            logger.debug("template %r: expired, served while it is refreshed", key.name)
            self._flight(key)
            return entry.value
        logger.debug("template %r: expired %.1f s ago, fetching it", key.name, age - self._ttl)
        return await self._shared_fetch(key)

    def invalidate(self, name: str | None = None) -> None:
        # Fetches under way finish for those already waiting, but are not stored, and later
        # callers start a fetch of their own (after a publish, they want the new version).
        self._generation += 1
        for table in (self._entries, self._flights):
            for key in [k for k in table if name is None or k.name == name]:
                del table[key]

    # -- fetching ----------------------------------------------------------------------
    def _flight(self, key: TemplateKey) -> _Flight:
        flight = self._flights.get(key)
        if flight is None:
            if self._tg is None:
                raise RuntimeError("TemplateCache is not running")
            flight = self._flights[key] = _Flight(self._generation)
            # The fetch runs in the cache's task group, so a caller that gives up does not
            # cancel it for the others waiting on the same key.
            self._tg.start_soon(self._fly, key, flight)
        return flight

    async def _shared_fetch(self, key: TemplateKey) -> dict[str, Any]:
        flight = self._flight(key)
        flight.waiters += 1
        await flight.done.wait()
        if flight.error is not None:
            raise flight.error
        if flight.value is None:
            raise PromptLayerError(
                f"fetching prompt template {key.name!r}: the client closed during the fetch"
            )
        return flight.value

    async def _fly(self, key: TemplateKey, flight: _Flight) -> None:
        stale = self._entries.get(key)
        try:
            value = await self._fetch(key, has_stale=stale is not None)
        except PromptLayerNotFoundError as exc:
            self._entries.pop(key, None)  # deleted upstream: stop serving it
            flight.error = exc
        except _TRANSIENT as exc:
            if stale is None:
                flight.error = exc
            else:
                flight.value = self._serve_stale(key, stale, exc)
        except Exception as exc:
            flight.error = exc
            if stale is not None and not flight.waiters:
                # A background refresh nobody waits for: say so, and keep serving the entry
                # for a while rather than asking again on every call.
                stale.retry_at = self.clock() + min(max(self._ttl, 1.0), _BACKOFF_MAX)
                logger.warning("refreshing prompt template %r failed: %s", key.name, exc)
        else:
            flight.value = value
            if flight.generation == self._generation:
                self._store(key, value)
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()

    def _serve_stale(self, key: TemplateKey, stale: _Entry, exc: Exception) -> dict[str, Any]:
        now = self.clock()
        retry_after = getattr(exc, "retry_after", None)
        backoff = min(max(self._ttl, 1.0), _BACKOFF_MAX)
        if retry_after is not None:
            backoff = max(backoff, float(retry_after))
        stale.retry_at = now + backoff
        logger.warning(
            "serving prompt template %r from the cache, %.0f s past its TTL, because the "
            "registry failed: %s (asking it again in %.0f s)",
            key.name,
            max(0.0, now - stale.fetched_at - self._ttl),
            exc,
            backoff,
        )
        return stale.value

    async def _fetch(self, key: TemplateKey, *, has_stale: bool) -> dict[str, Any]:
        self.fetches += 1
        context = f"fetching prompt template {key.name!r}"
        body = key.params()
        body["api_key"] = self._transport.api_key

        async def once() -> Any:
            return await self._transport.request(
                "POST", f"/prompt-templates/{quote(key.name, safe='')}", body=body, context=context
            )

        # With a known-good entry in hand, one attempt: on failure the caller gets that entry
        # at once instead of after the whole retry cycle (2 + 4 + 8 s).
        policy = NO_RETRY_POLICY if has_stale else CALLER_POLICY
        started = time.perf_counter()
        try:
            value = await call_with_retries(policy, context, once)
        except Exception as exc:
            logger.debug(
                "template %r: fetch failed after %.1f ms: %s",
                key.name,
                (time.perf_counter() - started) * 1000,
                exc,
            )
            raise
        if not isinstance(value, dict):
            raise PromptLayerNotFoundError(f"Prompt template {key.name!r} not found.")
        logger.debug(
            "template %r: fetched version %s in %.1f ms (HTTP 200)",
            key.name,
            value.get("version"),
            (time.perf_counter() - started) * 1000,
        )
        return value

    def _store(self, key: TemplateKey, value: dict[str, Any]) -> None:
        if self._ttl <= 0:
            return
        now = self.clock()
        self._entries[key] = _Entry(value, now, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
