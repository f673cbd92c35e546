"""The process-wide portal thread that runs every sync client's async runtime.

One daemon thread with one event loop serves all :class:`~promptrun.PromptLayer` instances of
a process, so many clients cost one thread, not one each, and no call makes an event loop of
its own. It is a daemon so that interpreter exit never waits on it; the sync clients' atexit
hook ships their pending records through it first. After ``fork()`` the child starts a new one
on first use (the parent's thread does not exist in the child).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["CANCEL_GRACE", "call", "fork_generation", "get_portal", "soon"]

T = TypeVar("T")

CANCEL_GRACE = 2.0
"""How long an interrupted :func:`call` waits for its cancelled task to wind down: seconds."""

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_loop: asyncio.AbstractEventLoop | None = None
_thread: int | None = None
_generation = 0


def _after_fork_in_child() -> None:
    global _portal, _loop, _thread, _generation, _lock
    _portal = _loop = _thread = None
    _generation += 1
    _lock = threading.Lock()  # a lock held by another thread at fork time would never be freed


os.register_at_fork(after_in_child=_after_fork_in_child)


def fork_generation() -> int:
    """Changes in a child process after ``fork()``: clients compare it to start afresh."""
    return _generation


def get_portal() -> BlockingPortal:
    """The running portal, started on first use."""
    portal = _portal
    if portal is not None:
        return portal
    with _lock:
        if _portal is None:
            _start()
        assert _portal is not None
        return _portal


def call(fn: Callable[..., Any], /, *args: Any) -> Any:
    """``fn(*args)`` in the portal's loop (awaited when it returns an awaitable); its result.

    The hot path of every sync call, so one hop: the call is scheduled with
    ``call_soon_threadsafe`` and its outcome set on a ``concurrent.futures.Future`` the caller
    blocks on (``BlockingPortal.call`` waits twice: for its task group to start the task,
    then for the task). The caller's context variables go with it. If the caller is
    interrupted while waiting (KeyboardInterrupt), the task is cancelled, and the interrupt
    re-raised once the task has wound down (for up to :data:`CANCEL_GRACE` seconds).
    """
    loop = _loop
    if loop is None:
        get_portal()
        loop = _loop
        assert loop is not None
    if threading.get_ident() == _thread:
        raise RuntimeError("This method cannot be called from the event loop thread")
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    box: list[asyncio.Task[Any]] = []
    context = contextvars.copy_context()

    def settle(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            future.cancel()
        elif (exc := task.exception()) is not None:
            future.set_exception(exc)
        else:
            future.set_result(task.result())

    def start() -> None:
        try:
            value = context.run(fn, *args)
        except BaseException as exc:  # handed to the caller, as BlockingPortal.call does
            future.set_exception(exc)
            return
        if not inspect.isawaitable(value):
            future.set_result(value)
            return
        coro = value if asyncio.iscoroutine(value) else _awaited(value)
        task = loop.create_task(coro, context=context)
        box.append(task)
        task.add_done_callback(settle)

    loop.call_soon_threadsafe(start)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            loop.call_soon_threadsafe(_cancel, box)
            # Let the cancelled task wind down first (a run logs itself as cancelled), for up
            # to a moment: a script ending on Ctrl-C then has that record in its shipper.
            with contextlib.suppress(BaseException):  # a second Ctrl-C stops the wait
                future.exception(timeout=CANCEL_GRACE)
        raise


def soon(fn: Callable[..., Any], /, *args: Any) -> bool:
    """Schedule ``fn(*args)`` on the portal's loop without waiting for it: for what must not
    block (a finaliser, an interrupted caller). False if this process has no portal loop."""
    loop = _loop
    if loop is None or loop.is_closed():
        return False
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # closed between the check and the call
        return False
    return True


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _cancel(box: list[asyncio.Task[Any]]) -> None:
    for task in box:
        task.cancel()


def _start() -> None:
    global _portal, _loop, _thread
    import anyio
    from anyio.from_thread import BlockingPortal

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        async with BlockingPortal() as portal:
            box["portal"] = portal
            box["loop"] = asyncio.get_running_loop()
            box["thread"] = threading.get_ident()
            ready.set()
            await portal.sleep_until_stopped()

    def target() -> None:
        try:
            anyio.run(main)
        except BaseException as exc:  # pragma: no cover - reported to the starter below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=target, name="promptrun-portal", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:  # pragma: no cover
        raise RuntimeError("promptrun could not start its portal thread") from box["error"]
    _loop, _thread = box["loop"], box["thread"]
    _portal = box["portal"]
