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
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from promptrun._errors import PromptLayerError

__all__ = ["RENDER_THREADS", "START_WAIT", "RenderBusyError", "run_rendering"]

T = TypeVar("T")

RENDER_THREADS = 2
START_WAIT = 5.0

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
# One gate per event loop: an asyncio semaphore belongs to the loop it is used in.
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
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
    ends it); the thread's place is given back only when that work is done.
    """
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(RENDER_THREADS)
    try:
        async with asyncio.timeout(start_wait):
            await gate.acquire()
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
