"""The budget of one rendering: seconds of work and characters built.

A template is code from whoever published it. Rendering one must end soon and stay small
whatever it does (a loop over a huge range, a format width of a billion, recursion, repeated
doubling), on the server and on every client that renders it from a shared registry. A
:class:`Meter` tracks one rendering: the jinja2 sandbox's hooks (loop iterations, calls,
operators, filters, every piece of output) and the f-string renderer charge it, and it raises
:class:`RenderBudgetError` once the rendering is past its deadline or has built more
characters than its budget allows. Building is charged before the large allocations happen,
so a rendering is stopped before it can exhaust memory, not after.

Characters built counts the output and the strings made on the way (a ``~`` or ``+`` of two
strings, a filter's result), so the size budget is a bound on memory as well as on output.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from typing import Literal

from promptrun.blueprint._errors import UnsafeTemplateError

__all__ = ["DEFAULT_BUDGET", "Meter", "RenderBudget", "RenderBudgetError", "meter", "metered"]


@dataclass(frozen=True, slots=True)
class RenderBudget:
    """How much one rendering may take.

    ``seconds``: wall time from its start (checked at every loop iteration, call, operator,
    filter and piece of output, so a runaway template stops within milliseconds of it).
    ``max_chars``: characters it may build in all (its output and the strings made on the
    way); about four times the largest request body a server takes, so real templates with
    large inputs fit.
    """

    seconds: float = 1.0
    max_chars: int = 16_000_000

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError("RenderBudget.seconds must be more than 0")
        if self.max_chars < 1:
            raise ValueError("RenderBudget.max_chars must be at least 1")


DEFAULT_BUDGET = RenderBudget()
_YIELD_EVERY = 0.001


class RenderBudgetError(UnsafeTemplateError):
    """Rendering went past its budget: ``budget`` is ``"time"`` or ``"size"``, ``limit`` its
    value (seconds, or characters)."""

    def __init__(self, message: str, *, budget: Literal["time", "size"], limit: float) -> None:
        super().__init__(message)
        self.budget = budget
        self.limit = limit

    def naming(self, where: str) -> RenderBudgetError:
        """The same error with ``where`` (which template) in front of its message."""
        return RenderBudgetError(f"{where}: {self.message}", budget=self.budget, limit=self.limit)


class Meter:
    """One rendering's spending against its budget."""

    __slots__ = ("_yield_at", "budget", "built", "deadline")

    def __init__(self, budget: RenderBudget) -> None:
        self.budget = budget
        now = time.monotonic()
        self.deadline = now + budget.seconds
        self._yield_at = now + _YIELD_EVERY
        self.built = 0

    def tick(self) -> None:
        """Fail once the rendering is past its deadline; now and then, let other threads run."""
        now = time.monotonic()
        if now >= self._yield_at:
            # A long rendering in a worker thread gives the GIL away each millisecond, so
            # the event loop's thread never waits a whole switch interval (5 ms) for it.
            time.sleep(0)
            self._yield_at = now + _YIELD_EVERY
        if now > self.deadline:
            seconds = self.budget.seconds
            raise RenderBudgetError(
                f"rendering took longer than its time budget of {seconds:g} s (a loop, "
                "recursion or call that does too much work); make the template do less",
                budget="time",
                limit=seconds,
            )

    def spend(self, chars: int) -> None:
        """Charge ``chars`` characters about to be built (and check the time)."""
        self.built += chars
        if self.built > self.budget.max_chars:
            limit = self.budget.max_chars
            raise RenderBudgetError(
                f"rendering would build more than its size budget of {limit:,} characters "
                "(output, and the strings made on the way); make the template produce less",
                budget="size",
                limit=limit,
            )
        self.tick()

    def room(self) -> int:
        """Characters that may still be built."""
        return self.budget.max_chars - self.built


_CURRENT: contextvars.ContextVar[Meter | None] = contextvars.ContextVar(
    "promptrun_render_meter", default=None
)


def meter() -> Meter:
    """The meter of the rendering in progress (a fresh default one outside any)."""
    current = _CURRENT.get()
    return current if current is not None else Meter(DEFAULT_BUDGET)


class metered:  # lower case: used like a function, `with metered(budget):`
    """Run a rendering under ``budget`` (the default when None).

    Nested use (a template rendering its messages one by one) shares the outermost meter, so
    the whole template gets one budget. A class, not a generator: it is on every ``run()``.
    """

    __slots__ = ("_budget", "_token")

    def __init__(self, budget: RenderBudget | None) -> None:
        self._budget = budget
        self._token: contextvars.Token[Meter | None] | None = None

    def __enter__(self) -> Meter:
        current = _CURRENT.get()
        if current is not None:
            return current
        started = Meter(self._budget or DEFAULT_BUDGET)
        self._token = _CURRENT.set(started)
        return started

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
