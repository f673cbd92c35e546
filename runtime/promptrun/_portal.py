"""The process-wide portal thread that runs every sync client's async runtime.

One daemon thread with one event loop serves all :class:`~promptrun.PromptLayer` instances of
a process, so many clients cost one thread, not one each, and no call makes an event loop of
its own. It is a daemon so that interpreter exit never waits on it; the sync clients' atexit
hook ships their pending records through it first. After ``fork()`` the child starts a new one
on first use (the parent's thread does not exist in the child).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["fork_generation", "get_portal"]

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_generation = 0


def _after_fork_in_child() -> None:
    global _portal, _generation, _lock
    _portal = None
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


def _start() -> None:
    global _portal
    import anyio
    from anyio.from_thread import BlockingPortal

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        async with BlockingPortal() as portal:
            box["portal"] = portal
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
    _portal = box["portal"]
