"""Retry policies for calls to the PromptLayer API, on stamina.

Caller-facing calls follow the spec: 4 attempts, exponential waits of 2, 4, 8 s capped at 15 s,
retrying only 5xx and 429 (a ``Retry-After`` is honoured), never connection errors, timeouts or
other 4xx. A WARNING "Retrying in N seconds..." goes to the ``promptlayer`` logger before each
retry. Background shipping uses a patient policy that also retries connection errors and
timeouts, because nobody is waiting on it. Tests make waits instant with
``stamina.set_testing(True)``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
)

__all__ = ["CALLER_POLICY", "SHIPPER_POLICY", "RetryPolicy", "call_with_retries"]

logger = logging.getLogger("promptlayer")
# stamina logs each retry it schedules to its own logger; our retries are reported on the
# "promptlayer" logger instead, so without logging configured nothing may reach stderr through
# logging's last-resort handler. (With logging configured, stamina's records still propagate.)
logging.getLogger("stamina").addHandler(logging.NullHandler())

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    wait_initial: float
    wait_max: float
    retry_transport_errors: bool

    def retryable(self, exc: Exception) -> bool:
        if isinstance(exc, PromptLayerInternalServerError | PromptLayerRateLimitError):
            return True
        return self.retry_transport_errors and isinstance(
            exc, PromptLayerAPIConnectionError | PromptLayerAPITimeoutError
        )

    def wait_for(self, attempt: int, exc: Exception) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            return float(min(retry_after, self.wait_max))
        base = self.wait_initial * (2 ** (attempt - 1))
        # Up to 10% jitter, so many clients that failed together do not retry together.
        return float(min(self.wait_max, base * (1 + 0.1 * random.random())))


CALLER_POLICY = RetryPolicy(
    attempts=4, wait_initial=2.0, wait_max=15.0, retry_transport_errors=False
)
SHIPPER_POLICY = RetryPolicy(
    attempts=3, wait_initial=0.5, wait_max=5.0, retry_transport_errors=True
)


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
            logger.warning("Retrying in %.1f seconds... (%s: %s)", wait, self.context, exc)
        return wait


async def call_with_retries(
    policy: RetryPolicy,
    context: str,
    fn: Callable[[], Awaitable[T]],
    *,
    quiet: bool = False,
) -> T:
    """Await ``fn()`` until it succeeds or the policy gives up (then its last error is raised)."""
    import stamina  # with tenacity, ~9 ms to import: paid by the first call, not at import

    hook = _Hook(policy, context, quiet)
    async for attempt in stamina.retry_context(
        on=hook, attempts=policy.attempts, timeout=None, wait_max=policy.wait_max
    ):
        with attempt:
            return await fn()
    raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover
