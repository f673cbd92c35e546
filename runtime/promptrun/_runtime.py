"""The runtime: what one client runs on, bound to one event loop, with an explicit lifetime.

``async with open_runtime(config) as rt:`` is the whole of it: it opens the HTTP session,
starts the log shipper in its task group, and on the way out ships before it lets go (stop
intake of new batches, ship what was handed over within ``shutdown_timeout``, leave the rest
in the spool for the next client, close the provider clients and the session). The async
client enters it lazily, on first use, in a task of its own (:func:`start_runtime`), so a
client works with or without ``async with``.

What it holds, and what each is:

- :class:`~promptrun.actors.shipper.LogShipper`, the one actor: it owns the spool and ships
  from it in a loop of its own, in the runtime's task group.
- :class:`~promptrun._template_cache.TemplateCache` and
  :class:`~promptrun.pipeline.ProviderClients`: plain objects guarded by the loop; their work
  runs in the callers' tasks (template fetches in the task group, so they outlive a caller
  that gives up).
- :attr:`Runtime.pipeline`: the run pipeline over those (:mod:`promptrun._client_pipeline`).

Supervision policy (what happens when a part fails, and what the caller sees):

- The shipper crashes (an exception escapes its loop): it is restarted after a pause (0.25 s,
  doubling to 30 s while it keeps crashing), with an ERROR and the traceback for the first
  crash of a streak. Every record it was handed is already in the spool and is shipped after
  the restart; callers see nothing (``run()`` and ``log_request()`` keep returning at once,
  ``flush()`` waits on).
- A template fetch fails: the callers waiting for that template get the error (or the stale
  entry, as the cache's policy says); no other caller and no other part is affected, and the
  next caller fetches again.
- A provider client cannot be created (a missing key, an SDK not installed): that call fails
  with an error that says what to set or install, and is logged as failed; nothing is kept,
  so the next call tries again.
- The loop closes (``asyncio.run()`` returns, the client was never closed): the runtime's task
  is cancelled and ships under a shielded scope while the loop waits for it; what it cannot
  ship in time waits in the spool. A later call in another loop gets a new runtime.
- Anything else that ends the runtime's task group is a bug: the runtime finishes as above,
  the ERROR names it, and every later call on that client raises a ``PromptLayerError``
  saying so (the client is not silently rebuilt).

Every way a runtime can end goes through the same shipping shutdown:

- ``aclose()`` (or ``async with``): in the runtime's loop.
- The loop shutting down: see above.
- The client garbage-collected: its runtime is stopped in its loop, or, if that loop no longer
  runs (closed, or stopped for good), finished from a thread.
- Interpreter exit (see :mod:`promptrun._lifetime`): runtimes still open are finished from the
  exiting thread, in a fresh event loop; a loop running in another thread (the sync client's
  portal, a notebook's) first stops its shipper so that only one ships.

In a process that forked, the shutdown also ships what its children left in the spool
(:func:`_drain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from promptrun import _lifetime
from promptrun._client_pipeline import InlineSink, RegistryTemplates, ShipperSink
from promptrun._config import ClientConfig
from promptrun._errors import PromptLayerError
from promptrun._http import ApiTransport
from promptrun._procs import forked
from promptrun._template_cache import TemplateCache
from promptrun.actors.shipper import LogShipper
from promptrun.pipeline import Pipeline, ProviderClients, ProviderRoutes

if TYPE_CHECKING:
    from promptrun.tracing._setup import ClientTracing

__all__ = ["Runtime", "open_runtime", "start_runtime"]

logger = logging.getLogger("promptlayer")

_RESTART_FIRST, _RESTART_MAX = 0.25, 30.0


class Runtime:
    """The running side of one client, bound to one event loop (see the module's policy)."""

    def __init__(self, config: ClientConfig, tracing: ClientTracing | None = None) -> None:
        self.config = config
        self.transport = ApiTransport(config.base_url, config.api_key, config.http_timeout)
        self.templates = TemplateCache(
            self.transport,
            ttl=config.cache_ttl_seconds,
            max_entries=config.template_cache_size,
            refresh=config.cache_refresh,
            max_stale=config.cache_max_stale_seconds,
        )
        self.shipper = LogShipper(
            self.transport,
            spool_dir=config.spool_dir,
            spool_max_bytes=config.spool_max_bytes,
            channel_size=config.log_channel_size,
            batch_size=config.log_batch_size,
            linger=config.log_batch_linger,
            linger_max=config.log_batch_linger_max,
        )
        transport = self.transport
        self.providers = ProviderClients(
            config.provider_concurrency,
            session=(lambda: transport.provider_session) if config.native_transport else None,
        )
        self.registry = RegistryTemplates(self.templates, self.transport)
        sink = (
            InlineSink(self.shipper, self.transport)
            if config.inline_logging
            else ShipperSink(self.shipper)
        )
        self.pipeline = Pipeline(
            self.registry,
            self.providers,
            sink,
            ProviderRoutes(config.provider_base_urls),
            strict_variables=config.strict_variables,
        )
        self.tracing = tracing
        if tracing is not None:  # spans at the pipeline's stages, and per shipped batch
            from promptrun.tracing._pipeline import traced_pipeline

            self.pipeline = traced_pipeline(self.pipeline, self.registry, tracing.tracer)
            self.shipper.batch_span = tracing.batch_span
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        #: What ended the runtime's task group, when something did (a bug).
        self.failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: anyio.Event | None = None
        self._finisher_lock = threading.Lock()
        self._elsewhere_lock = threading.Lock()  # one thread finishing at a time
        self.finished = threading.Event()

    # -- supervision ---------------------------------------------------------------------
    async def _supervise_shipper(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the shipper; restart it after a crash, with a growing pause."""
        shipper = self.shipper
        pause = _RESTART_FIRST
        streak = 0
        status = task_status
        while True:
            shipped = shipper.stats.shipped
            try:
                await shipper.run(task_status=status)
                return
            except Exception as exc:
                if shipper.stopped is None:
                    raise  # it never started: a start-up error, for the caller
                if shipper.stats.shipped > shipped:
                    streak, pause = 0, _RESTART_FIRST  # it had recovered since the last one
                streak += 1
                if streak == 1:
                    logger.error(
                        "the promptrun log shipper crashed; it restarts in %.2f s, and the "
                        "records it holds wait in the spool %s until then",
                        pause,
                        shipper.spool.folder,
                        exc_info=exc,
                    )
                else:
                    logger.debug("the promptrun log shipper crashed again: %r", exc)
            status = anyio.TASK_STATUS_IGNORED
            await anyio.sleep(pause)
            pause = min(pause * 2, _RESTART_MAX)
            if self.closed:
                return

    # -- lifecycle -----------------------------------------------------------------------
    async def aclose(self) -> None:
        if self._task is None or self._stop is None:
            self.closed = True
            return
        self._stop.set()
        await asyncio.shield(self._task)

    def is_usable_here(self) -> bool:
        """False when the loop this runtime lived in is gone (a second ``asyncio.run``)."""
        if self.closed or self.loop is None or self.loop.is_closed():
            return False
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    async def _wait_shipper_stopped(self, deadline: float) -> None:
        self.closed = True
        self.shipper.stop()
        stopped = self.shipper.stopped
        if stopped is not None:
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                await stopped.wait()  # after the batch in flight

    async def _finish(self, deadline: float) -> None:
        """Ship what is left (shielded, within the deadline), then let go of everything."""
        self.closed = True
        shipper = self.shipper
        with anyio.CancelScope(shield=True):
            if not shipper.handed_over:
                with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                    await _drain(shipper, self.transport)
            # A thread asked for the shipper meanwhile (interpreter exit): it lets go, not us.
            if not shipper.handed_over:
                shipper.release()
                self._done()
            await self.providers.aclose()
            await _close_quietly(self.transport)

    def _done(self) -> None:
        with self._finisher_lock:
            if self.finished.is_set():
                return
            self.finished.set()
        logger.info("promptrun client stopped: %s", self.shipper.snapshot())
        self._log_unshipped()
        _lifetime.unregister(self)

    def _log_unshipped(self) -> None:
        """Say what did not reach the server, each kind apart: waiting, refused, lost."""
        s = self.shipper.snapshot()
        if s["pending"]:
            logger.warning(
                "promptrun closed with %d log record(s) of this client not shipped yet (records "
                "other processes left in the spool are not counted): they wait in the spool "
                "%s, and the next client of %s with this API key ships them (%s)",
                s["pending"],
                self.config.spool_dir,
                self.config.base_url,
                s,
            )
        if s["failed"]:
            logger.warning(
                "promptrun closed; %d log record(s) were refused by the server (the warnings "
                "above say why) and will not be sent again; they are kept in %s (%s)",
                s["failed"],
                self.shipper.refused.path,
                s,
            )
        if s["dropped"]:
            logger.warning(
                "promptrun closed; %d log record(s) were lost (spool full or unwritable; the "
                "warnings above say which) (%s)",
                s["dropped"],
                s,
            )

    # -- ending from outside the runtime's loop ------------------------------------------
    def abandon(self) -> None:
        """The client was garbage-collected: finish in the runtime's loop, or from a thread."""
        loop, stop = self.loop, self._stop
        if loop is None or stop is None or self.finished.is_set():
            return
        if not loop.is_closed() and loop.is_running():
            try:
                loop.call_soon_threadsafe(stop.set)
                return
            except RuntimeError:
                pass  # closed just now
        deadline = time.monotonic() + self.config.shutdown_timeout
        # At interpreter shutdown no thread can start: the exit hook has this runtime.
        with contextlib.suppress(RuntimeError):
            threading.Thread(
                target=self.finish_elsewhere, args=(deadline,), name="promptrun-finish"
            ).start()

    def finish_elsewhere(self, deadline: float) -> None:
        """Ship what is left from this thread, in a fresh event loop, then let go.

        For interpreter exit and for runtimes whose loop no longer runs. If the loop still
        runs in another thread, its shipper finishes its batch in flight and stops first, so
        that only one ships.
        """
        with self._elsewhere_lock:
            if self.finished.is_set():
                return
            loop, stop = self.loop, self._stop
            running = loop is not None and not loop.is_closed() and loop.is_running()
            if running:
                assert loop is not None
                try:
                    quiet = asyncio.run_coroutine_threadsafe(self.shipper.quiesce(), loop)
                    handed = quiet.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception as exc:
                    # The loop did not answer in time: its records stay on disk for later.
                    logger.debug("promptrun could not stop its shipper: %r", exc)
                    return
                if not handed:  # the runtime finished in its loop first
                    return
            self.closed = True
            self.shipper.take_over()
            _lifetime.run_fresh(self._drain_elsewhere(deadline))
            self._done()
            if running and loop is not None and stop is not None:
                # Let the runtime's task end and close its session in its own loop.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            elif loop is not None:
                _lifetime.abandon_session(self.transport)

    async def _drain_elsewhere(self, deadline: float) -> None:
        config = self.config
        transport = ApiTransport(config.base_url, config.api_key, config.http_timeout)
        try:
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                await transport.open(resolver=_lifetime.blocking_resolver())
                await _drain(self.shipper, transport)
        finally:
            self.shipper.release()
            await _close_quietly(transport)


@contextlib.asynccontextmanager
async def open_runtime(
    config: ClientConfig, tracing: ClientTracing | None = None
) -> AsyncIterator[Runtime]:
    """A runtime for the running loop, from start to its shipping shutdown.

    Start-up errors (the session, the shipper) are raised here. On the way out, however the
    body ended (done, an error, a cancellation), the shutdown ships within
    ``config.shutdown_timeout`` and leaves the rest in the spool.
    """
    rt = Runtime(config, tracing)
    rt.loop = asyncio.get_running_loop()
    _lifetime.register(rt)
    deadline: float | None = None
    try:
        await rt.transport.open()
        async with anyio.create_task_group() as tg:
            rt.templates.attach(tg)
            await tg.start(rt._supervise_shipper)
            logger.info("promptrun client started for %s", config.base_url)
            try:
                yield rt
            finally:
                deadline = time.monotonic() + config.shutdown_timeout
                try:
                    await rt._wait_shipper_stopped(deadline)
                finally:
                    tg.cancel_scope.cancel()
    finally:
        # Whatever ended it: the body, an error, or this task being cancelled because
        # asyncio.run() is ending with the client still open (the loop keeps running until
        # this task is done).
        if deadline is None:
            deadline = time.monotonic() + config.shutdown_timeout
        await rt._finish(deadline)


async def start_runtime(config: ClientConfig, tracing: ClientTracing | None = None) -> Runtime:
    """:func:`open_runtime` in a task of its own in the running loop; returns once it is
    ready. The runtime lives until ``aclose()`` (or its loop ends)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[Runtime] = loop.create_future()
    stop = anyio.Event()
    # With tracing, the runtime's tasks (the shipper, template fetches) start from no trace:
    # never under the span of the call that happened to start the runtime.
    context = None if tracing is None else contextvars.Context()
    task = loop.create_task(
        _host(config, tracing, ready, stop), name="promptrun-runtime", context=context
    )
    rt = await asyncio.shield(ready)
    rt._task = task
    return rt


async def _host(
    config: ClientConfig,
    tracing: ClientTracing | None,
    ready: asyncio.Future[Runtime],
    stop: anyio.Event,
) -> None:
    rt: Runtime | None = None
    try:
        async with open_runtime(config, tracing) as rt:
            rt._stop = stop
            ready.set_result(rt)
            await stop.wait()
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(
                exc if isinstance(exc, Exception) else PromptLayerError("runtime stopped")
            )
        if not isinstance(exc, Exception):
            raise
        if rt is not None:
            rt.failure = exc
        logger.error("the promptrun runtime stopped: %s", exc, exc_info=exc)


async def _drain(shipper: LogShipper, transport: ApiTransport) -> None:
    """The shutdown's shipment: what this client was handed and, in a process that forked,
    what its children left in the spool (ended by SIGTERM or ``os._exit``, they did not ship
    it; the segments of children still running stay theirs)."""
    if forked():
        await shipper.adopt_kin()
    await shipper.drain(transport)


async def _close_quietly(transport: ApiTransport) -> None:
    try:
        with anyio.CancelScope(shield=True):
            await transport.close()
    except Exception as exc:  # pragma: no cover - best effort at the very end
        logger.debug("closing the PromptLayer session failed: %s", exc)
