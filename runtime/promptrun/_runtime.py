"""Runtime: one task group owning the client's actors, one HTTP session, ordered shutdown.

The runtime runs as its own task in the event loop that first used the client, so a client
works with or without ``async with``. Its shutdown ships before it lets go: stop intake of new
batches, ship what was handed over within ``shutdown_timeout``, and leave the rest in the
spool for the next client. Every way a runtime can end goes through that:

- ``aclose()`` (or ``async with``): in the runtime's loop.
- The loop shutting down (``asyncio.run()`` or ``anyio.run()`` returning while the client was
  never closed): the runtime's task is cancelled, and ships under a shielded scope while the
  loop waits for cancelled tasks to finish.
- The client garbage-collected: its runtime is stopped in its loop, or, if that loop no longer
  runs (closed, or stopped for good), finished from a thread.
- Interpreter exit (see :mod:`promptrun._lifetime`): runtimes still open are finished from the
  exiting thread, in a fresh event loop; a loop running in another thread (the sync client's
  portal, a notebook's) first stops its shipper so that only one ships.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import anyio
from anyio.abc import TaskGroup

from promptrun import _lifetime
from promptrun._config import ClientConfig
from promptrun._errors import PromptLayerError
from promptrun._http import ApiTransport
from promptrun.actors.providers import ProviderWorker
from promptrun.actors.shipper import LogShipper
from promptrun.actors.templates import TemplateCache

__all__ = ["Runtime"]

logger = logging.getLogger("promptlayer")


class Runtime:
    """The running side of one client, bound to one event loop."""

    def __init__(self, config: ClientConfig) -> None:
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
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._workers: dict[tuple[str, str | None], ProviderWorker] = {}
        self._worker_lock: anyio.Lock | None = None
        self._tg: TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._stop: anyio.Event | None = None
        self.closed = False
        self._finisher_lock = threading.Lock()
        self._elsewhere_lock = threading.Lock()  # one thread finishing at a time
        self.finished = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the runtime task in the running loop and wait until its actors are ready."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._ready = loop.create_future()
        self._stop = anyio.Event()
        self._worker_lock = anyio.Lock()
        _lifetime.register(self)
        self._task = loop.create_task(self._main(), name="promptrun-runtime")
        await asyncio.shield(self._ready)

    async def _main(self) -> None:
        assert self._ready is not None
        assert self._stop is not None
        deadline: float | None = None
        try:
            await self.transport.open()
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await tg.start(self.templates.run)
                await tg.start(self.shipper.run)
                self._ready.set_result(None)
                logger.info("promptrun client started for %s", self.config.base_url)
                await self._stop.wait()
                self.closed = True
                deadline = time.monotonic() + self.config.shutdown_timeout
                self.shipper.stop()
                stopped = self.shipper.stopped
                if stopped is not None:
                    with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                        await stopped.wait()  # after the batch in flight
                tg.cancel_scope.cancel()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(
                    exc if isinstance(exc, Exception) else PromptLayerError("runtime stopped")
                )
            if not isinstance(exc, Exception):
                raise
            logger.error("the promptrun runtime stopped: %s", exc, exc_info=exc)
        finally:
            # Whatever ended it: aclose(), an error, or this task being cancelled because
            # asyncio.run() is ending with the client still open (the loop keeps running
            # until this task is done).
            if deadline is None:
                deadline = time.monotonic() + self.config.shutdown_timeout
            await self._finish(deadline)

    async def _finish(self, deadline: float) -> None:
        """Ship what is left (shielded, within the deadline), then let go of everything."""
        self.closed = True
        shipper = self.shipper
        with anyio.CancelScope(shield=True):
            if not shipper.handed_over:
                with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                    await shipper.drain(self.transport)
            # A thread asked for the shipper meanwhile (interpreter exit): it lets go, not us.
            if not shipper.handed_over:
                shipper.release()
                self._done()
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
        s = self.shipper.snapshot()
        if s["pending"] or s["dropped"] or s["failed"]:
            logger.warning(
                "promptrun closed with log records not shipped: %s (what is pending waits in "
                "the spool %s for the next client for this server and key)",
                s,
                self.config.spool_dir,
            )

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
                await self.shipper.drain(transport)
        finally:
            self.shipper.release()
            await _close_quietly(transport)

    # -- provider workers ----------------------------------------------------------------
    async def worker(self, provider: str, base_url: str | None) -> ProviderWorker:
        key = (provider, base_url)
        worker = self._workers.get(key)
        if worker is not None:
            return worker
        assert self._worker_lock is not None
        assert self._tg is not None
        async with self._worker_lock:
            worker = self._workers.get(key)
            if worker is None:
                worker = ProviderWorker(provider, base_url, self.config.provider_concurrency)
                await self._tg.start(worker.run)
                self._workers[key] = worker
        return worker


async def _close_quietly(transport: ApiTransport) -> None:
    try:
        with anyio.CancelScope(shield=True):
            await transport.close()
    except Exception as exc:  # pragma: no cover - best effort at the very end
        logger.debug("closing the PromptLayer session failed: %s", exc)
