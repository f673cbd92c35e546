"""Runtime: one task group owning the client's actors, one HTTP session, ordered shutdown.

The runtime runs as its own task in the event loop that first used the client, so a client
works with or without ``async with``. Shutdown is ordered: stop intake, let the shipper drain
its channel within a deadline, spool what is left, then cancel everything.
"""

from __future__ import annotations

import asyncio
import logging

import anyio
from anyio.abc import TaskGroup

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

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the runtime task in the running loop and wait until its actors are ready."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._ready = loop.create_future()
        self._stop = anyio.Event()
        self._worker_lock = anyio.Lock()
        self._task = loop.create_task(self._main(), name="promptrun-runtime")
        await asyncio.shield(self._ready)

    async def _main(self) -> None:
        assert self._ready is not None
        assert self._stop is not None
        try:
            await self.transport.open()
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await tg.start(self.templates.run)
                await tg.start(self.shipper.run)
                self._ready.set_result(None)
                logger.info("promptrun client started for %s", self.config.base_url)
                await self._stop.wait()
                await self._shutdown(tg)
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(
                    exc if isinstance(exc, Exception) else PromptLayerError("runtime stopped")
                )
            if not isinstance(exc, Exception):
                raise
            logger.error("the promptrun runtime stopped: %s", exc, exc_info=exc)
        finally:
            self.closed = True
            # Anything still queued goes to disk, whatever ended us (aclose, cancellation of
            # the loop's tasks at asyncio.run's end, an error).
            self.shipper.spool_leftovers()
            self.shipper.close()
            await _close_quietly(self.transport)
            logger.info("promptrun client stopped: %s", self.shipper.stats.as_dict())
            self._log_unshipped()

    async def _shutdown(self, tg: TaskGroup) -> None:
        self.shipper.close_intake()
        with anyio.move_on_after(self.config.shutdown_timeout):
            await self.shipper.stopped.wait()
        tg.cancel_scope.cancel()

    def _log_unshipped(self) -> None:
        s = self.shipper.stats
        if s.spooled or s.dropped or s.failed:
            logger.warning(
                "promptrun closed with log records not shipped: %s (spooled records are "
                "replayed by the next client for this server and key, or by flush())",
                s.as_dict(),
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
