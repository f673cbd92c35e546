"""Retry policies for calls to the PromptLayer API, on stamina.

Caller-facing calls follow the spec: 4 attempts, exponential waits of 2, 4, 8 s capped at 15 s,
retrying only 5xx and 429 (a ``Retry-After`` is honoured), never connection errors, timeouts or
other 4xx. A WARNING "Retrying in N seconds... (what failed)" goes to the ``promptlayer``
logger before each retry. Background shipping uses a patient policy that also retries
connection errors and timeouts, with jitter, because nobody is waiting on it. Tests make waits
instant with ``stamina.set_testing(True)``; the warnings still name the policy's waits.
"""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from promptrun._errors import SERVER_BUSY, TRANSPORT_FAILED, describe

__all__ = [
    "CALLER_POLICY",
    "NO_RETRY_POLICY",
    "SHIPPER_POLICY",
    "RetryPolicy",
    "call_with_retries",
]

logger = logging.getLogger("promptlayer")

_retrying: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "promptrun_retrying", default=False
)


def _not_ours(record: logging.LogRecord) -> bool:
    return not _retrying.get()


# stamina logs each retry it schedules to its own logger; ours are reported once, on the
# "promptlayer" logger, so its record of them is dropped (it would print a second line, and with
# no logging configured an unexplained "stamina.retry_scheduled"). Retries of the application's
# own stamina calls are left alone.
logging.getLogger("stamina").addFilter(_not_ours)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    wait_initial: float
    wait_max: float
    retry_transport_errors: bool
    jitter: float = 0.0  # up to this fraction is added to each wait

    def retryable(self, exc: Exception) -> bool:
        if isinstance(exc, SERVER_BUSY):
            return True
        return self.retry_transport_errors and isinstance(exc, TRANSPORT_FAILED)

    def wait_for(self, attempt: int, exc: Exception) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            return float(min(retry_after, self.wait_max))
        base = self.wait_initial * (2 ** (attempt - 1))
        return float(min(self.wait_max, base * (1 + self.jitter * random.random())))


# The spec's policy, waits exactly as it documents them: 2, 4, 8 s.
CALLER_POLICY = RetryPolicy(
    attempts=4, wait_initial=2.0, wait_max=15.0, retry_transport_errors=False
)
# One attempt: for a template fetch that has a known-good cached entry to fall back on.
NO_RETRY_POLICY = RetryPolicy(
    attempts=1, wait_initial=0.0, wait_max=0.0, retry_transport_errors=False
)
# Background shipping: jitter, so many clients that failed together do not retry together.
SHIPPER_POLICY = RetryPolicy(
    attempts=3, wait_initial=0.5, wait_max=5.0, retry_transport_errors=True, jitter=0.1
)


def seconds(wait: float) -> str:
    """A wait as people write it: ``2``, ``0.5``, ``1.3``."""
    return f"{wait:.1f}".removesuffix(".0")


class _Hook:
    """stamina's backoff hook for one call: decides, computes the wait, and warns."""

    __slots__ = ("attempt", "context", "policy", "quiet")

    def __init__(self, policy: RetryPolicy, context: str, quiet: bool) -> None:
        self.policy = policy
        self.context = context
        self.quiet = quiet
        self.attempt = 0

    def __call__(self, exc: Exception) -> bool | float:
        self.attempt += 1
        if self.attempt >= self.policy.attempts or not self.policy.retryable(exc):
            return False
        wait = self.policy.wait_for(self.attempt, exc)
        if not self.quiet:
            logger.warning(
                "Retrying in %s seconds... (%s)", seconds(wait), describe(self.context, exc)
            )
        return wait


async def call_with_retries(
    policy: RetryPolicy,
    context: str,
    fn: Callable[[], Awaitable[T]],
    *,
    quiet: bool = False,
) -> T:
    """Await ``fn()`` until it succeeds or the policy gives up (then its last error is raised).

    The first attempt runs bare: stamina's machinery is set up only once it fails, and then
    sees that failure as its own first attempt, so waits, warnings and stamina's testing
    mode are exactly as if it had run every attempt.
    """
    if policy.attempts <= 1:
        return await fn()
    try:
        return await fn()
    except Exception as exc:
        first: Exception | None = exc
    import stamina  # with tenacity, ~9 ms to import: paid by the first retry, not at import

    hook = _Hook(policy, context, quiet)
    token = _retrying.set(True)
    try:
        async for attempt in stamina.retry_context(
            on=hook, attempts=policy.attempts, timeout=None, wait_max=policy.wait_max
        ):
            with attempt:
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await fn()
    finally:
        _retrying.reset(token)
    raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover
