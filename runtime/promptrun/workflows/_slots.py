"""Fair shares of a fixed number of slots: a global count, and a smaller count per owner.

Code nodes take a slot each while they run. With ``per_owner < total``, one workspace can
never hold every slot: another workspace's node always finds one free, or gets the next one.
Waiters are served first come, first served among those the limits allow, so a busy owner
waiting for its own share does not hold up an idle owner behind it.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Hashable

import anyio

__all__ = ["SlotPool"]


class _Waiter:
    __slots__ = ("event", "granted", "owner")

    def __init__(self, owner: Hashable) -> None:
        self.owner = owner
        self.event = anyio.Event()
        self.granted = False


class SlotPool:
    """``total`` slots, at most ``per_owner`` of them held by any one owner at a time."""

    def __init__(self, total: int, per_owner: int | None = None) -> None:
        if total < 1:
            raise ValueError(f"slots must be at least 1, not {total}")
        per_owner = total if per_owner is None else per_owner
        if not 1 <= per_owner <= total:
            raise ValueError(f"slots per owner must be 1..{total}, not {per_owner}")
        self.total = total
        self.per_owner = per_owner
        self._held: dict[Hashable, int] = {}
        self._in_use = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    def held_by(self, owner: Hashable) -> int:
        return self._held.get(owner, 0)

    def _allowed(self, owner: Hashable) -> bool:
        return self._in_use < self.total and self._held.get(owner, 0) < self.per_owner

    def _take(self, owner: Hashable) -> None:
        self._in_use += 1
        self._held[owner] = self._held.get(owner, 0) + 1

    def _give_back(self, owner: Hashable) -> None:
        self._in_use -= 1
        left = self._held[owner] - 1
        if left:
            self._held[owner] = left
        else:
            del self._held[owner]
        self._wake()

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            if self._in_use >= self.total:
                return
            if self._allowed(waiter.owner):
                self._waiters.remove(waiter)
                self._take(waiter.owner)
                waiter.granted = True
                waiter.event.set()

    @contextlib.asynccontextmanager
    async def slot(self, owner: Hashable = None) -> AsyncIterator[None]:
        """Hold one slot for ``owner`` while the block runs; waits (cancellably) for one."""
        if self._allowed(owner) and not any(w.owner == owner for w in self._waiters):
            self._take(owner)
        else:
            waiter = _Waiter(owner)
            self._waiters.append(waiter)
            try:
                await waiter.event.wait()
            except BaseException:
                if waiter.granted:
                    self._give_back(owner)
                else:
                    self._waiters.remove(waiter)
                raise
        try:
            yield
        finally:
            self._give_back(owner)
