"""Rendering off the event loop, a few at a time.

The server renders templates (``POST /prompt-templates/{name}`` with ``input_variables``,
workflow prompt nodes) and evaluates workflow conditions for whoever calls it. Even under its
budget (:class:`promptrun.blueprint.RenderBudget`) a hostile template may use a second of CPU,
so that work runs in worker threads, never on the event loop that answers ``/health`` and
every other request. At most :data:`RENDER_THREADS` renderings run at once (the GIL makes more
useless for CPU-bound work, and fewer leaves the loop its share of the CPU); a rendering that
cannot start within ``start_wait`` seconds fails with :class:`RenderBusyError` instead of
queueing without end. A Python thread cannot be killed, so what stops a runaway rendering is
its budget, checked inside the sandbox's hooks; the thread then returns to the pool.

Renderings waiting for a thread queue per tenant (:data:`RENDER_TENANT`, the server's
workspace) and are let in round-robin between tenants, first come first served within one: a
workspace that sends a flood of slow templates waits behind its own renderings, not in front
of another workspace's.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import TypeVar

from promptrun._errors import PromptLayerError

__all__ = ["RENDER_TENANT", "RENDER_THREADS", "START_WAIT", "RenderBusyError", "run_rendering"]

T = TypeVar("T")

RENDER_THREADS = 2
START_WAIT = 5.0

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
# Who the renderings started from this context are for (the server sets the request's
# workspace); None is one tenant of its own.
RENDER_TENANT: ContextVar[Hashable] = ContextVar("promptrun_render_tenant", default=None)


class _FairGate:
    """``slots`` places, handed to waiting tenants in turn (FIFO within a tenant).

    One per event loop, used only from that loop's thread, so it needs no lock.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        # Tenants with waiters, in the order they are served next (a dict keeps insertion
        # order: a served tenant moves to the end).
        self._waiting: dict[Hashable, deque[asyncio.Future[None]]] = {}

    async def acquire(self, tenant: Hashable) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, deque()).append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # given a place just as the wait ended: pass it on
            else:
                queue = self._waiting.get(tenant)
                if queue is not None and turn in queue:
                    queue.remove(turn)
                    if not queue:
                        del self._waiting[tenant]
            raise

    def release(self) -> None:
        while self._waiting:
            tenant = next(iter(self._waiting))
            queue = self._waiting.pop(tenant)
            turn = queue.popleft()
            if queue:
                self._waiting[tenant] = queue  # to the back of the round
            if not turn.done():  # one that gave up is gone from its queue, but be sure
                turn.set_result(None)
                return
        self._free += 1


# One gate per event loop: its futures belong to the loop they are made in.
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _FairGate] = (
    weakref.WeakKeyDictionary()
)


class RenderBusyError(PromptLayerError):
    """Every render thread stayed busy: no rendering could start in time. Retry shortly."""


def _threads() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="promptrun-render")
        return _executor


async def run_rendering(work: Callable[..., T], *args: object, start_wait: float = START_WAIT) -> T:
    """``work(*args)`` in a render thread; RenderBusyError if none frees up in ``start_wait``.

    Cancelling the caller stops the wait for a thread, not work already running (its budget
    ends it); the thread's place is given back only when that work is done. Waiting callers
    are let in round-robin by :data:`RENDER_TENANT`.
    """
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = _FairGate(RENDER_THREADS)
    try:
        async with asyncio.timeout(start_wait):
            await gate.acquire(RENDER_TENANT.get())
    except TimeoutError:
        raise RenderBusyError(
            f"every one of the {RENDER_THREADS} render threads stayed busy for {start_wait:g} s "
            "(other templates are rendering); retry shortly"
        ) from None
    future = loop.run_in_executor(_threads(), work, *args)

    def done(finished: asyncio.Future[T]) -> None:
        gate.release()
        if not finished.cancelled():
            finished.exception()  # seen here, if the caller stopped waiting for it

    future.add_done_callback(done)
    return await asyncio.shield(future)
