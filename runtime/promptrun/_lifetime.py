"""The process's side of runtime lifetimes: which are open, and finishing them at exit.

At interpreter exit, every runtime still open ships what it holds within its
``shutdown_timeout`` (one deadline for all of them), from the exiting thread and a fresh event
loop, since the loop it lived in may be closed, stopped, or running in a daemon thread that is
about to vanish. Records handed over after their runtime closed (a stream finalised by
``asyncio.run()`` after the runtime's task ended) wait in the spool; they are shipped here too.

The fresh loop resolves host names in its own thread: by the time ``atexit`` hooks run, the
standard library has shut its thread pools down, so aiohttp's default resolver would fail.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptrun.actors import _spool

if TYPE_CHECKING:
    from promptrun._config import ClientConfig
    from promptrun._http import ApiTransport
    from promptrun._runtime import Runtime

__all__ = ["abandon_session", "blocking_resolver", "register", "run_fresh", "unregister"]

logger = logging.getLogger("promptlayer")

_lock = threading.Lock()
_open: dict[Runtime, None] = {}  # insertion-ordered; strong: a runtime leaves when finished
_configs: dict[Path, ClientConfig] = {}  # spool folder -> settings, for late records


def register(rt: Runtime) -> None:
    with _lock:
        _open[rt] = None
        _configs[rt.config.spool_dir] = rt.config


def unregister(rt: Runtime) -> None:
    with _lock:
        _open.pop(rt, None)


def run_fresh(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to completion in a new event loop of this thread, then close it."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def blocking_resolver() -> Any:
    """aiohttp's resolver with ``getaddrinfo`` called inline instead of in a thread pool."""
    from aiohttp.resolver import ThreadedResolver

    # Duck-typed: ThreadedResolver uses only these two methods of its loop.
    return ThreadedResolver(loop=_InlineLookups())  # type: ignore[arg-type]


class _InlineLookups:
    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        return socket.getaddrinfo(*args, **kwargs)

    async def getnameinfo(self, *args: Any) -> Any:
        return socket.getnameinfo(*args)


def abandon_session(transport: ApiTransport) -> None:
    """Forget the session of a loop that will not run again, without 'unclosed' noise."""
    session = transport.session
    if session is None:
        return
    connector = session.connector
    if connector is not None:
        # Private, but the only synchronous close: it marks the connector closed and, when
        # the loop is closed, touches nothing else.
        connector._close()
    transport._session = None


async def _ship_late(config: ClientConfig, deadline: float) -> None:
    import anyio

    from promptrun._http import ApiTransport
    from promptrun.actors.shipper import LogShipper

    transport = ApiTransport(config.base_url, config.api_key, config.http_timeout)
    shipper = LogShipper(
        transport,
        spool_dir=config.spool_dir,
        spool_max_bytes=config.spool_max_bytes,
        channel_size=config.log_channel_size,
        batch_size=config.log_batch_size,
    )
    try:
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            shipper.spool.adopt_orphans(own_pid_only=True)
            await transport.open(resolver=blocking_resolver())
            await shipper.drain(transport, adopted=True)
    finally:
        shipper.release()
        await transport.close()


@atexit.register
def _finish_all_at_exit() -> None:
    with _lock:
        runtimes = list(_open)
        late = [c for folder, c in _configs.items() if folder in _spool.LATE_FOLDERS]
    if not runtimes and not late:
        return
    timeouts = [rt.config.shutdown_timeout for rt in runtimes] + [c.shutdown_timeout for c in late]
    deadline = time.monotonic() + max(timeouts)
    for rt in runtimes:
        try:
            rt.finish_elsewhere(deadline)
        except Exception as exc:  # pragma: no cover - exit must go on
            logger.warning("promptrun could not ship its last log records at exit: %s", exc)
    for config in late:
        try:
            run_fresh(_ship_late(config, deadline))
        except Exception as exc:  # pragma: no cover - exit must go on
            logger.warning("promptrun could not ship its last log records at exit: %s", exc)
