"""How many bytes of request bodies the server holds at once, at most.

A body is read whole into memory, and one whose key is in the JSON body (the peer SDK's way)
must be read before the key can be checked: without a bound across requests, a thousand
unauthenticated connections each sending a 32 MiB log record (``--max-record-bytes``) would
make the server hold 32 GB. :class:`BodyBudget` is that bound
(``--max-inflight-body-bytes``, 128 MiB by default; 0: no bound).

Each request holds a :class:`BodyLease` (opened and closed by the connection middleware):
it holds the bytes of the body that have arrived, growing as the body is read (a compressed
body by its inflated size). A declared ``Content-Length`` reserves nothing: otherwise a few
idle connections declaring the largest bodies and trickling a byte at a time would hold the
whole budget for free, and every real large body would be refused while they stayed. Holding
the budget costs sending its bytes. The lease is given back when the request ends, whatever way
it ends (answered, refused, failed, disconnected, cancelled). A body that cannot grow within
the budget is answered 503 with ``Retry-After`` at once and its connection closed (the server
does not queue it: the client's own retry, with backoff, is the wait); a body larger than the
whole budget never can, and is a 413 naming both limits (before a byte is read, when its
declared length says so).

Small bodies (up to 64 KiB: fetching a template, running a prompt, a short log record) are
counted but never refused, so the API's ordinary calls keep working while large bodies fill
the budget. They can take it past its capacity by at most ``--max-connections`` x 64 KiB
(64 MiB at the default 1,000 connections).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from aiohttp import web

__all__ = [
    "BODY_BUDGET",
    "DEFAULT_MAX_INFLIGHT_BODY_BYTES",
    "BodyBudget",
    "BodyBudgetBusy",
    "BodyLease",
    "body_lease",
    "budget_capacity",
    "budget_note",
    "busy_for",
    "reserve_body",
]

log = logging.getLogger("promptrun.server")

# Four of the largest log records (--max-record-bytes, 32 MiB) at once, or 32 bodies at the
# general limit (--max-body-bytes, 4 MiB): bodies past the first few are queued by their
# clients rather than held here. Handling a record costs several times its size again (decoded,
# re-encoded, stored): 20 clients sending 30 MiB records at once peaked the server at 0.7-1.05 GB
# RSS with this budget, and at 1.1-1.5 GB with twice it (docs/limits.md).
DEFAULT_MAX_INFLIGHT_BODY_BYTES = 128 * 1024 * 1024
SMALL_BODY = 64 * 1024  # bytes: a body this size or less is never refused
RETRY_AFTER = 1  # seconds: a large body takes about that long to arrive and be handled
_WARN_EVERY = 60.0


class BodyBudgetBusy(Exception):
    """The budget has no room for this body now: a 503 with ``Retry-After``."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.capacity = capacity
        self.retry_after = RETRY_AFTER

    @property
    def message(self) -> str:
        return (
            "the server is busy reading other large request bodies (it holds at most "
            f"{self.capacity} bytes of them at once: --max-inflight-body-bytes); retry after "
            f"{self.retry_after} s"
        )


class BodyBudget:
    """Bytes of request bodies held across the server: ``capacity`` at most (0: unbounded)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0  # the most held at once
        self.busy = 0  # bodies answered 503 for want of room
        self._warned = float("-inf")

    def take(self, n: int, *, small: bool = False) -> bool:
        """Hold ``n`` more bytes, if they fit (``small``: whether or not they do)."""
        if self.capacity and not small and self.in_use + n > self.capacity:
            self.busy += 1
            self._warn()
            return False
        self.in_use += n
        self.peak = max(self.peak, self.in_use)
        return True

    def give_back(self, n: int) -> None:
        self.in_use -= n

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning(
                "request bodies being read hold %d of %d bytes: answering 503 to a body that "
                "does not fit (%d so far); see --max-inflight-body-bytes",
                self.in_use,
                self.capacity,
                self.busy,
            )


class BodyLease:
    """One request's share of the budget: grown as its body is read, given back at its end."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held = 0

    def grow_to(self, total: int) -> None:
        """Hold ``total`` bytes for this request; :class:`BodyBudgetBusy` when they do not fit."""
        more = total - self.held
        if more <= 0:
            return
        if not self.budget.take(more, small=total <= SMALL_BODY):
            raise BodyBudgetBusy(self.budget.capacity)
        self.held = total

    def release(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0


BODY_BUDGET: web.AppKey[BodyBudget] = web.AppKey("promptrun_body_budget", BodyBudget)
_LEASE: web.RequestKey[BodyLease] = web.RequestKey("promptrun_body_lease", BodyLease)


@contextlib.contextmanager
def body_lease(request: web.Request) -> Iterator[None]:
    """The request's lease on the server's body budget, for as long as the request runs."""
    budget = request.config_dict.get(BODY_BUDGET)
    if budget is None or _LEASE in request:
        yield
        return
    lease = request[_LEASE] = BodyLease(budget)
    try:
        yield
    finally:
        lease.release()


def budget_note(capacity: int, max_body_bytes: int, max_record_bytes: int) -> str | None:
    """The start-up note for a budget smaller than the largest body an endpoint accepts."""
    largest, option = max(
        (max_body_bytes, "--max-body-bytes"), (max_record_bytes, "--max-record-bytes")
    )
    if not capacity or capacity >= largest:
        return None
    return (
        f"note: --max-inflight-body-bytes ({capacity}) is less than {option} ({largest}): "
        f"a body larger than {capacity} bytes is refused (413) though within its endpoint's "
        f"limit; keep --max-inflight-body-bytes at least {option}"
    )


def budget_capacity(request: web.Request) -> int:
    """The server's body budget in bytes (0: none)."""
    budget = request.config_dict.get(BODY_BUDGET)
    return budget.capacity if budget is not None else 0


def busy_for(request: web.Request, size: int) -> BodyBudgetBusy | None:
    """Why a body of ``size`` bytes would not fit beside the bytes held now, if it would not
    (for ``Expect: 100-continue``: a client that asks is told before it uploads; nothing is
    reserved)."""
    budget = request.config_dict.get(BODY_BUDGET)
    if budget is None or not budget.capacity or size <= SMALL_BODY:
        return None
    if budget.in_use + size > budget.capacity:
        return BodyBudgetBusy(budget.capacity)
    return None


def reserve_body(request: web.Request, total: int) -> None:
    """Hold ``total`` bytes of the server's budget for this request's body (no-op outside one)."""
    lease = request.get(_LEASE)
    if lease is not None:
        lease.grow_to(total)
