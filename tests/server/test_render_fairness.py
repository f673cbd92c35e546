"""Renderings waiting for a render thread are let in round-robin between workspaces: one
workspace's flood of slow templates does not hold another's rendering back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable

import pytest

from promptrun._render_threads import RENDER_TENANT, RENDER_THREADS, run_rendering

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Held:
    """Renderings that start, say so, and wait to be let go."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()
        self.threads_full = asyncio.Event()  # every render thread has started one
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()

    def work(self, label: str) -> str:
        with self._lock:
            self.started.append(label)
            if len(self.started) == RENDER_THREADS:
                self._loop.call_soon_threadsafe(self.threads_full.set)
        assert self.release.wait(30)
        return label


async def _render_as(tenant: Hashable, held: Held, label: str) -> str:
    RENDER_TENANT.set(tenant)  # this task's own context
    return await run_rendering(held.work, label, start_wait=30)


async def test_a_second_workspace_is_let_in_before_the_first_ones_backlog() -> None:
    held = Held()
    busy = [asyncio.ensure_future(_render_as("a", held, f"a{i}")) for i in range(RENDER_THREADS)]
    await held.threads_full.wait()
    backlog = [asyncio.ensure_future(_render_as("a", held, f"a-late{i}")) for i in range(5)]
    await asyncio.sleep(0)  # the backlog queues first
    other = asyncio.ensure_future(_render_as("b", held, "b"))
    await asyncio.sleep(0)
    held.release.set()
    assert await asyncio.gather(*busy, *backlog, other)
    waiting_order = held.started[RENDER_THREADS:]
    # A freed thread goes to "a"'s first waiter, the next to "b", before "a"'s other four.
    assert waiting_order.index("b") <= 1, waiting_order
    assert [x for x in waiting_order if x != "b"] == [f"a-late{i}" for i in range(5)]


async def test_a_waiter_that_gives_up_does_not_keep_a_thread_from_the_next_caller() -> None:
    held = Held()
    busy = [asyncio.ensure_future(_render_as("a", held, f"a{i}")) for i in range(RENDER_THREADS)]
    await held.threads_full.wait()
    gives_up = asyncio.ensure_future(_render_as("b", held, "never"))
    await asyncio.sleep(0)
    gives_up.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gives_up
    held.release.set()
    await asyncio.gather(*busy)
    # Every thread is free again: a new rendering starts at once and finishes.
    assert await _render_as("c", held, "c") == "c"
    assert "never" not in held.started
