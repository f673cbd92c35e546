"""Before ``fork()``: wait for the one-time initialisations other threads have in progress.

promptrun imports what a run needs when a client first runs (``import promptrun`` stays
quick), and a first call builds the provider SDK's pydantic models. So one thread can be half
way through importing the pipeline, aiohttp or a provider SDK, or building a model, when
another thread forks. The child would inherit the modules half initialised and the locks of
those steps held by a thread it does not have: its first ``run()`` raises ``ImportError`` or
``AttributeError`` ("partially initialized module"), or hangs for good in ``importlib`` or in
pydantic's ``model_rebuild``. So a hook registered with :func:`os.register_at_fork` makes the
forking thread wait, before the fork, until no other thread holds a module's import lock or
pydantic's model-build lock.

Which imports: all of them, not only promptrun's. A module half imported by any thread is as
broken in the child, and a first run imports hundreds of other packages' modules (an SDK's,
aiohttp's, the standard library's) that no list of ours would keep up with. Two limits keep
the wait from hurting a program that forks:

- the forking thread's own imports are not waited for (a fork at a module's top level, such
  as a process pool started there, would wait on itself);
- the wait is bounded (:data:`WAIT_LIMIT`): an import whose module body waits for the fork
  itself (it waits on a child process another thread is starting) would otherwise hold the
  fork forever. Past the bound the fork goes ahead, as it did before.

The import locks are read from ``importlib._bootstrap._module_locks`` (each module's lock and
its owning thread, CPython 3.11 to 3.13), rather than from the ``sys.modules`` entries whose
``__spec__._initializing`` is set: a thread holds a module's lock while it looks for the
module too, before the module is in ``sys.modules``, and watching a lock never imports
anything (``importlib.import_module`` would import a module again, in the forking thread, when
the other thread's import had failed). Pydantic's lock is ``pydantic.main._rebuild_lock`` (an
``RLock``, pydantic 2.11 and later). Without them (another Python, an older pydantic) there is
nothing to wait for. An import or a build that another thread starts after the wait, in the
microseconds before the fork, is not covered. The hook never raises: a problem is logged at
DEBUG and the fork goes ahead.

A module whose import finishes while a fork waits misses its own ``before`` at-fork hook for
that fork (CPython copies the list of hooks before running them) but gets its ``after`` ones.
``concurrent.futures.thread``, which a first run imports (asyncio's default executor), has a
pair whose ``after_in_parent`` would then release a lock its ``before`` never took ("release
unlocked lock", printed at such a fork), so it is imported here, ahead of any fork (0.2 ms).
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401 - see the module's docstring
import importlib
import logging
import os
import sys
import threading
import time
from typing import Any

__all__ = ["WAIT_LIMIT", "imports_in_progress", "wait_before_fork"]

logger = logging.getLogger("promptlayer")

WAIT_LIMIT = 10.0
"""How long a fork waits, at most, for other threads' imports and model builds: seconds."""

_POLL_FIRST = 0.0005
_POLL_MAX = 0.01


def imports_in_progress() -> list[str]:
    """The modules whose import lock a thread other than this one holds, sorted."""
    bootstrap = getattr(importlib, "_bootstrap", None)
    locks = getattr(bootstrap, "_module_locks", None)
    if not isinstance(locks, dict):
        return []
    me = threading.get_ident()
    held: list[str] = []
    for name, ref in locks.copy().items():  # a copy: other threads add and drop locks
        lock = ref() if callable(ref) else None
        owner = getattr(lock, "owner", None)
        if owner is not None and owner != me:
            held.append(name)
    return sorted(held)


def wait_before_fork(timeout: float | None = None) -> None:
    """Wait until no other thread is importing a module or building a pydantic model, for up
    to ``timeout`` seconds (:data:`WAIT_LIMIT` by default); never raises."""
    try:
        deadline = time.monotonic() + (WAIT_LIMIT if timeout is None else timeout)
        # A model build can import, and an import can build a model: until neither is seen.
        while _wait_for_imports(deadline) | _wait_for_model_builds(deadline):
            if time.monotonic() >= deadline:
                break
    except Exception as exc:  # a fork must never fail because of this hook
        logger.debug("fork(): not waiting for other threads' imports: %r", exc)


def _wait_for_imports(deadline: float) -> bool:
    """Whether there was an import to wait for."""
    held = imports_in_progress()
    if not held:
        return False
    logger.debug("fork(): waiting for imports in progress in other threads: %s", held)
    pause = _POLL_FIRST
    while held:
        if time.monotonic() >= deadline:
            logger.debug("fork(): going ahead; still being imported in other threads: %s", held)
            break
        # Polling, not blocking on the lock: a blocking wait could not give up at the bound.
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)
        held = imports_in_progress()
    return True


def _wait_for_model_builds(deadline: float) -> bool:
    """Whether there was a pydantic model build to wait for."""
    lock: Any = getattr(sys.modules.get("pydantic.main"), "_rebuild_lock", None)
    if lock is None or not hasattr(lock, "acquire"):
        return False
    if lock.acquire(blocking=False):  # free, or this thread's own (an RLock)
        lock.release()
        return False
    logger.debug("fork(): waiting for a pydantic model build in another thread")
    if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        lock.release()
    else:
        logger.debug("fork(): going ahead while another thread builds a pydantic model")
    return True


os.register_at_fork(before=wait_before_fork)
