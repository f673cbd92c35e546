"""DAG scheduling, pure: which nodes may start, and what a node's outcome does to the rest.

A :class:`Schedule` knows each node's dependencies and each conditional's two branches, and
nothing else: no values, no clocks, no I/O. The engine asks :meth:`Schedule.ready` what to
start, tells it :meth:`~Schedule.start`, :meth:`~Schedule.succeed` or :meth:`~Schedule.fail`,
and records the :class:`Settled` entries those calls return.

The rules:

- A node is ready when every dependency SUCCEEDED; ready nodes come in definition order.
- A failure settles every node downstream of it as FAILED, naming the node that failed.
- A conditional that succeeds with a branch settles the other branch's nodes as SKIPPED,
  saying which way it went; whatever is downstream of a skipped node is SKIPPED too.
- A node settles once: the first outcome that reaches it wins.
- :meth:`~Schedule.abort` (a timeout, a cancellation) settles every waiting node as SKIPPED.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Schedule", "Settled", "Status"]


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


TERMINAL = frozenset({Status.SUCCESS, Status.FAILED, Status.SKIPPED})


@dataclass(frozen=True, slots=True)
class Settled:
    """A node that reached a final status without running, and why."""

    name: str
    status: Status
    reason: str


class Schedule:
    """The state of one run's nodes; every method is O(affected nodes)."""

    def __init__(
        self,
        dependencies: Mapping[str, Collection[str]],
        branches: Mapping[str, tuple[Collection[str], Collection[str]]] | None = None,
    ) -> None:
        self._order = list(dependencies)
        self._deps = {name: frozenset(d) for name, d in dependencies.items()}
        self._dependants: dict[str, list[str]] = {name: [] for name in self._order}
        for name in self._order:
            for dep in self._deps[name]:
                if dep not in self._dependants:
                    raise ValueError(f"{name!r} depends on unknown node {dep!r}")
                self._dependants[dep].append(name)
        self._branches = {
            name: (frozenset(t), frozenset(f)) for name, (t, f) in (branches or {}).items()
        }
        self._status = dict.fromkeys(self._order, Status.PENDING)
        self._waiting = {name: len(self._deps[name]) for name in self._order}

    # -- queries ---------------------------------------------------------------------
    def status(self, name: str) -> Status:
        return self._status[name]

    def ready(self) -> list[str]:
        """Nodes that may start now (pending, every dependency succeeded), in definition order."""
        return [
            name
            for name in self._order
            if self._status[name] is Status.PENDING and self._waiting[name] == 0
        ]

    @property
    def running(self) -> list[str]:
        return [name for name in self._order if self._status[name] is Status.RUNNING]

    @property
    def finished(self) -> bool:
        """True when no node is pending or running."""
        return all(status in TERMINAL for status in self._status.values())

    # -- transitions -----------------------------------------------------------------
    def start(self, name: str) -> None:
        if self._status[name] is not Status.PENDING or self._waiting[name]:
            raise ValueError(f"node {name!r} is not ready to start ({self._status[name]})")
        self._status[name] = Status.RUNNING

    def succeed(self, name: str, branch: bool | None = None) -> list[Settled]:
        """``name`` succeeded; for a conditional, ``branch`` is the way it went."""
        self._finish(name, Status.SUCCESS)
        for child in self._dependants[name]:
            self._waiting[child] -= 1
        if name not in self._branches:
            return []
        if branch is None:
            raise ValueError(f"conditional node {name!r} succeeded without choosing a branch")
        if_true, if_false = self._branches[name]
        dropped = if_false if branch else if_true
        side = "true" if branch else "false"
        other = "false" if branch else "true"
        reason = f"skipped: conditional {name!r} was {side}, and this node is on its {other} branch"
        return self._cascade((n for n in self._order if n in dropped), Status.SKIPPED, reason, name)

    def fail(self, name: str) -> list[Settled]:
        """``name`` failed (or was interrupted): settle everything downstream as FAILED."""
        self._finish(name, Status.FAILED)
        return self._cascade(self._dependants[name], Status.FAILED, None, name)

    def abort(self, reason: str) -> list[Settled]:
        """Settle every pending node as SKIPPED (running ones are the caller's to fail)."""
        settled = []
        for name in self._order:
            if self._status[name] is Status.PENDING:
                self._status[name] = Status.SKIPPED
                settled.append(Settled(name, Status.SKIPPED, reason))
        return settled

    # -- internals -------------------------------------------------------------------
    def _finish(self, name: str, status: Status) -> None:
        if self._status[name] is not Status.RUNNING:
            raise ValueError(f"node {name!r} is not running ({self._status[name]})")
        self._status[name] = status

    def _cascade(
        self, first: Iterable[str], status: Status, reason: str | None, root: str
    ) -> list[Settled]:
        settled: list[Settled] = []
        queue = [(name, reason) for name in first]
        while queue:
            name, why = queue.pop(0)
            if self._status[name] is not Status.PENDING:
                continue
            if why is None:
                why = f"not run: upstream node {root!r} failed"
            self._status[name] = status
            settled.append(Settled(name, status, why))
            if status is Status.SKIPPED:
                follow = f"skipped: upstream node {name!r} was skipped"
            else:
                follow = why
            queue.extend((child, follow) for child in self._dependants[name])
        return settled
