"""TemplateCache: the prompt registry as seen by one client, with a TTL cache.

Not an actor: a plain object guarded by the runtime's event loop (every method runs in it).
Its fetches run in the runtime's task group (:meth:`TemplateCache.attach`), so a caller that
gives up does not cancel a fetch others wait for, and a fetch that fails hands its error to
the callers waiting for it and to nobody else.

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

import anyio
from anyio.abc import TaskGroup

from promptrun._errors import TRANSIENT, PromptLayerError, PromptLayerNotFoundError
from promptrun._http import ApiTransport, Shape, segment
from promptrun._retry import CALLER_POLICY, NO_RETRY_POLICY, call_with_retries
from promptrun.pipeline import PromptRef

__all__ = ["TEMPLATE_SHAPE", "CacheOutcome", "CacheRefresh", "TemplateCache", "registry_params"]

#: What the registry answers for a template: an object with its ``prompt_template``.
TEMPLATE_SHAPE: Shape = (
    "a prompt template",
    lambda v: isinstance(v, dict) and isinstance(v.get("prompt_template"), dict),
)

logger = logging.getLogger("promptlayer")

CacheRefresh = Literal["wait", "background"]
CacheOutcome = Literal["hit", "miss", "expired", "stale", "refreshing"]

_BACKOFF_MAX = 30.0


def registry_params(ref: PromptRef) -> dict[str, Any]:
    """The fetch body's selectors for ``ref``, asking for the template unrendered."""
    body: dict[str, Any] = {"skip_input_variable_rendering": True}
    for name in ("version", "label", "provider", "model"):
        value = getattr(ref, name)
        if value is not None:
            body[name] = value
    return body


@dataclass(slots=True)
class _Entry:
    value: dict[str, Any]
    fetched_at: float
    retry_at: float  # after a failed fetch: the registry is not asked again before this


class _Fetch:
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
        self._entries: OrderedDict[PromptRef, _Entry] = OrderedDict()
        self._fetches: dict[PromptRef, _Fetch] = {}
        self._generation = 0  # bumped by invalidate(): a fetch begun before it is not stored
        self._tg: TaskGroup | None = None

    def attach(self, task_group: TaskGroup) -> None:
        """Run fetches in ``task_group`` (the runtime's) from now on."""
        self._tg = task_group

    # -- the caller's side -------------------------------------------------------------
    async def get(self, key: PromptRef) -> dict[str, Any]:
        """The unrendered template for ``key``; callers must not mutate it."""
        return (await self.lookup(key))[0]

    async def lookup(self, key: PromptRef) -> tuple[dict[str, Any], CacheOutcome]:
        """:meth:`get`, and how the cache answered: ``hit`` (within the TTL), ``miss`` (not
        cached), ``expired`` (fetched again; if the registry failed, served stale), ``stale`` (served past its TTL after the
        registry failed) or ``refreshing`` (served while a background refresh runs)."""
        entry = self._entries.get(key)
        if entry is None:
            logger.debug("template %r: not in the cache, fetching it", key.name)
            return await self._wait_for_fetch(key), "miss"
        now = self.clock()
        age = now - entry.fetched_at
        if age < self._ttl:
            self._entries.move_to_end(key)
            logger.debug("template %r: served from the cache (%.1f s old)", key.name, age)
            return entry.value, "hit"
        if now < entry.retry_at:
            logger.debug("template %r: the registry failed recently, serving it stale", key.name)
            return entry.value, "stale"
        if self._refresh == "background" and age < self._ttl + self._max_stale:
            logger.debug("template %r: expired, served while it is refreshed", key.name)
            self._start_fetch(key)
            return entry.value, "refreshing"
        logger.debug("template %r: expired %.1f s ago, fetching it", key.name, age - self._ttl)
        return await self._wait_for_fetch(key), "expired"

    def invalidate(self, name: str | None = None) -> None:
        # Fetches under way finish for those already waiting, but are not stored, and later
        # callers start a fetch of their own (after a publish, they want the new version).
        self._generation += 1
        for table in (self._entries, self._fetches):
            for key in [k for k in table if name is None or k.name == name]:
                del table[key]

    # -- fetching ----------------------------------------------------------------------
    def _start_fetch(self, key: PromptRef) -> _Fetch:
        fetch = self._fetches.get(key)
        if fetch is None:
            if self._tg is None:
                raise RuntimeError("TemplateCache is not attached to a running runtime")
            fetch = self._fetches[key] = _Fetch(self._generation)
            # The fetch runs in the cache's task group, so a caller that gives up does not
            # cancel it for the others waiting on the same key.
            self._tg.start_soon(self._run_fetch, key, fetch)
        return fetch

    async def _wait_for_fetch(self, key: PromptRef) -> dict[str, Any]:
        fetch = self._start_fetch(key)
        fetch.waiters += 1
        await fetch.done.wait()
        if fetch.error is not None:
            raise fetch.error
        if fetch.value is None:
            raise PromptLayerError(
                f"fetching prompt template {key.name!r}: the client closed during the fetch"
            )
        return fetch.value

    async def _run_fetch(self, key: PromptRef, fetch: _Fetch) -> None:
        stale = self._entries.get(key)
        try:
            value = await self._from_registry(key, has_stale=stale is not None)
        except PromptLayerNotFoundError as exc:
            self._entries.pop(key, None)  # deleted upstream: stop serving it
            fetch.error = exc
        except TRANSIENT as exc:
            if stale is None:
                fetch.error = exc
            else:
                fetch.value = self._serve_stale(key, stale, exc)
        except Exception as exc:
            fetch.error = exc
            if stale is not None and not fetch.waiters:
                # A background refresh nobody waits for: say so, and keep serving the entry
                # for a while rather than asking again on every call.
                stale.retry_at = self.clock() + min(max(self._ttl, 1.0), _BACKOFF_MAX)
                logger.warning("refreshing prompt template %r failed: %s", key.name, exc)
        else:
            fetch.value = value
            if fetch.generation == self._generation:
                self._store(key, value)
        finally:
            if self._fetches.get(key) is fetch:
                del self._fetches[key]
            fetch.done.set()

    def _serve_stale(self, key: PromptRef, stale: _Entry, exc: Exception) -> dict[str, Any]:
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

    async def _from_registry(self, key: PromptRef, *, has_stale: bool) -> dict[str, Any]:
        context = f"fetching prompt template {key.name!r}"
        body = registry_params(key)
        body["api_key"] = self._transport.api_key

        async def once() -> Any:
            return await self._transport.request(
                "POST",
                f"/prompt-templates/{segment(key.name)}",
                body=body,
                context=context,
                shape=TEMPLATE_SHAPE,
            )

        # With a known-good entry in hand, one attempt: on failure the caller gets that entry
        # at once instead of after the whole retry cycle (2 + 4 + 8 s).
        policy = NO_RETRY_POLICY if has_stale else CALLER_POLICY
        started = time.perf_counter()
        try:
            value: dict[str, Any] = await call_with_retries(policy, context, once)
        except Exception as exc:
            logger.debug(
                "template %r: fetch failed after %.1f ms: %s",
                key.name,
                (time.perf_counter() - started) * 1000,
                exc,
            )
            raise
        logger.debug(
            "template %r: fetched version %s in %.1f ms (HTTP 200)",
            key.name,
            value.get("version"),
            (time.perf_counter() - started) * 1000,
        )
        return value

    def _store(self, key: PromptRef, value: dict[str, Any]) -> None:
        if self._ttl <= 0:
            return
        now = self.clock()
        self._entries[key] = _Entry(value, now, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
