"""Fair shares of code-node slots: one owner never holds them all; waiters are served fairly."""

from __future__ import annotations

import contextlib

import anyio
import pytest

from promptrun.workflows._slots import SlotPool

pytestmark = pytest.mark.anyio


async def test_an_owner_at_its_share_waits_while_another_owner_gets_the_free_slot() -> None:
    pool = SlotPool(3, per_owner=2)
    order: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(pool.slot("a"))
        await stack.enter_async_context(pool.slot("a"))
        got_third = anyio.Event()

        async def third_for_a() -> None:
            async with pool.slot("a"):
                order.append("a")
                got_third.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(third_for_a)
            await anyio.wait_all_tasks_blocked()
            assert pool.held_by("a") == 2 and not got_third.is_set()
            async with pool.slot("b"):  # the free slot goes to b at once
                order.append("b")
                assert pool.in_use == 3
            await stack.aclose()  # a's two slots free up: its waiter gets one
            await got_third.wait()
    assert order == ["b", "a"]
    assert pool.in_use == 0


async def test_waiters_are_served_first_come_first_served() -> None:
    pool = SlotPool(1)
    order: list[int] = []

    async def take(n: int) -> None:
        async with pool.slot(n):
            order.append(n)

    async with anyio.create_task_group() as tg, pool.slot("holder"):
        for n in range(4):
            tg.start_soon(take, n)
            await anyio.wait_all_tasks_blocked()
    assert order == [0, 1, 2, 3]


async def test_a_cancelled_waiter_leaves_nothing_held_or_queued() -> None:
    pool = SlotPool(1)
    async with pool.slot("a"):
        with anyio.move_on_after(0.05) as scope:
            async with pool.slot("b"):
                pytest.fail("b got a slot that a holds")
        assert scope.cancelled_caught
        assert pool.held_by("b") == 0
    assert pool.in_use == 0
    async with pool.slot("b"):
        assert pool.held_by("b") == 1


def test_shares_larger_than_the_pool_are_refused() -> None:
    with pytest.raises(ValueError, match=r"slots per owner must be 1..2, not 3"):
        SlotPool(2, per_owner=3)
    with pytest.raises(ValueError, match="slots must be at least 1"):
        SlotPool(0)
