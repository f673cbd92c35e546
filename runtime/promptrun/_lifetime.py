"""The process's side of runtime lifetimes: which are open, and finishing them at exit.

At interpreter exit, every runtime still open ships what it holds within its
``shutdown_timeout`` (one deadline for all of them), from the exiting thread and a fresh event
loop, since the loop it lived in may be closed, stopped, or running in a daemon thread that is
about to vanish. Records handed over after their runtime closed (a stream finalised by
``asyncio.run()`` after the runtime's task ended) wait in the spool; they are shipped here too.

So are, in a process that forked, the records its children left in the spool of any client
this process made (even one it never used itself): a ``multiprocessing`` worker is ended with
SIGTERM and an ``os.fork()`` child often ends with ``os._exit``, so neither ships at its exit.
Only segments of children that have ended are taken (a live one holds its segments' locks);
with none, exit costs a look at the spool folder's names.

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

from promptrun._procs import forked

if TYPE_CHECKING:
    from promptrun._config import ClientConfig
    from promptrun._http import ApiTransport
    from promptrun._runtime import Runtime

__all__ = [
    "abandon_session",
    "blocking_resolver",
    "register",
    "remember",
    "run_fresh",
    "unregister",
]

logger = logging.getLogger("promptlayer")

_lock = threading.Lock()
_open: dict[Runtime, None] = {}  # insertion-ordered; strong: a runtime leaves when finished
_configs: dict[Path, ClientConfig] = {}  # spool folder -> settings, for what is left there
_started = False  # a runtime ever ran here: records may have come after it closed


def remember(config: ClientConfig) -> None:
    """A client was made: at exit, ship what this process's forked children left for it."""
    with _lock:
        _configs.setdefault(config.spool_dir, config)


def register(rt: Runtime) -> None:
    global _started
    with _lock:
        _open[rt] = None
        _configs[rt.config.spool_dir] = rt.config
        _started = True


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


async def _ship_left(config: ClientConfig, deadline: float, *, late: bool, kin: bool) -> None:
    """Ship what is left in ``config``'s spool folder: records this process handed over after
    its runtime closed (``late``), what its forked children left (``kin``)."""
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
            found = shipper.spool.adopt_orphans(own_pid_only=True) if late else 0
            found += shipper.spool.adopt_orphans(kin_only=True) if kin else 0
            if found:
                await transport.open(resolver=blocking_resolver())
                await shipper.drain(transport, adopted=True)
    finally:
        shipper.release()
        await transport.close()


@atexit.register
def _finish_all_at_exit() -> None:
    with _lock:
        runtimes = list(_open)
        configs = dict(_configs)
        started = _started
    if not runtimes and not (configs and (started or forked())):
        return  # no client ran here, and no child of ours could have used one
    timeouts = [rt.config.shutdown_timeout for rt in runtimes]
    timeouts += [c.shutdown_timeout for c in configs.values()]
    deadline = time.monotonic() + max(timeouts)
    for rt in runtimes:
        try:
            rt.finish_elsewhere(deadline)
        except Exception as exc:  # pragma: no cover - exit must go on
            logger.warning("promptrun could not ship its last log records at exit: %s", exc)
    from promptrun.actors import _spool

    for folder, config in configs.items():
        late = folder in _spool.LATE_FOLDERS
        kin = forked() and _spool.kin_waiting(folder)
        if not (late or kin):
            continue
        if time.monotonic() >= deadline:
            break  # what is left waits in the spool for the next client
        try:
            run_fresh(_ship_left(config, deadline, late=late, kin=kin))
        except Exception as exc:  # pragma: no cover - exit must go on
            logger.warning("promptrun could not ship its last log records at exit: %s", exc)
