"""The async iterator ``run(stream=True)`` returns, which a caller may drop unread.

The provider stream is open (the request sent, and billed) by the time ``run()`` returns it,
as with the provider SDKs. An async generator that is never iterated never runs its body, so
neither its ``finally`` nor the finaliser hooks of the event loop would ever close that
stream or log the run. This wrapper notices: closed (``aclose()``) or dropped before its first
item, it runs ``abandon`` — close the provider stream, log the run as unread — in the loop it
was made in. Once iterated, it is the generator's own business, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

__all__ = ["RunStream"]

_pending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


class RunStream:
    """An async generator of a run's stream items (``async for``, ``aclose()``, ...)."""

    __slots__ = ("_abandon", "_agen", "_loop", "_started")

    def __init__(
        self, agen: AsyncGenerator[Any, None], abandon: Callable[[], Awaitable[None]]
    ) -> None:
        self._agen = agen
        self._abandon: Callable[[], Awaitable[None]] | None = abandon
        self._loop = asyncio.get_running_loop()
        self._started = False

    def __aiter__(self) -> RunStream:
        return self

    # The generator's own awaitables, handed on (not awaited in a coroutine of ours): a
    # stream's per-chunk path gains no frame.
    def __anext__(self) -> Awaitable[Any]:
        self._started = True
        return self._agen.__anext__()

    def asend(self, value: Any) -> Awaitable[Any]:
        self._started = True
        return self._agen.asend(value)

    def athrow(self, *args: Any) -> Awaitable[Any]:
        self._started = True
        return self._agen.athrow(*args)

    async def aclose(self) -> None:
        abandon = self._take_abandon()
        if abandon is not None:
            await abandon()
        await self._agen.aclose()

    def _take_abandon(self) -> Callable[[], Awaitable[None]] | None:
        """The clean-up of an unread stream, once; None if it was read or cleaned up."""
        abandon, self._abandon = self._abandon, None
        return None if self._started else abandon

    def __del__(self) -> None:
        abandon = self._take_abandon()
        if abandon is None or self._loop.is_closed():
            return
        # RuntimeError: the loop closed meanwhile, and nothing can run there any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_start, abandon)

    def __repr__(self) -> str:
        return f"<promptrun run stream {'started' if self._started else 'unread'}>"


def _start(abandon: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        await abandon()

    task = asyncio.get_running_loop().create_task(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
