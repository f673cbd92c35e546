"""How many connections ``promptrun serve`` holds, and how long each may take or sit idle.

A client that opens connections and never finishes a request (a "slowloris": half a request
line, a header every few seconds, a body that never comes) costs the server a file descriptor
each. Without limits a thousand of them exhaust the usual 1,024-descriptor limit and the server
stops accepting anyone. Here:

- a request's line and headers must arrive within ``header_timeout`` of the connection opening
  (or of its first byte after an idle keep-alive); trickling bytes does not extend it;
- its body must arrive within ``body_timeout`` (a 408 otherwise);
- a keep-alive connection may sit idle between requests for ``keepalive_timeout``;
- at most ``max_connections`` are open at once (lowered at start to fit the process's open-files
  limit, keeping room for the database and outgoing calls). A connection over the cap takes the
  place of the one that has waited longest without a request in progress (idle, or still
  sending its headers or body), so a flood of stalled connections cannot lock new clients out;
  only when every connection is busy with a request is a new one closed at once.

:class:`ConnectionGuard` wraps aiohttp's protocol factory (connection level: opened, bytes,
closed) and :func:`connection_middleware` tells it when a request starts and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from promptrun.server._bodies import read_body_bytes
from promptrun.server._body_budget import body_lease
from promptrun.server._http import error_response
from promptrun.server._protocol_errors import json_errors
from promptrun.server.auth import refuse_unknown_header_key

__all__ = [
    "GUARD",
    "ConnectionGuard",
    "ConnectionLimits",
    "GuardedSite",
    "connection_middleware",
    "fit_to_open_files",
    "new_runner",
    "start_site",
]

log = logging.getLogger("promptrun.server")

# asyncio accepts up to this many connections at each wake-up, each a descriptor before the
# guard sees it; the kernel queues up to LISTEN_QUEUE more, so a burst of connections waits
# there instead of having its SYNs dropped (which costs a client a one-second retry).
ACCEPT_BATCH = 64
LISTEN_QUEUE = 128
# Descriptors kept for what is not an admitted client connection: the database (and its WAL
# and reader threads), outgoing provider and tool calls, code-node processes, logs, and a
# batch of just-accepted connections.
RESERVED_DESCRIPTORS = 128 + ACCEPT_BATCH
_WARN_EVERY = 60.0

_State = Literal["waiting", "body", "busy", "idle"]


def _timeout_408(seconds: float) -> bytes:
    """The answer to a request whose line and headers did not arrive in time, as JSON."""
    message = (
        f"the request line and headers did not arrive within {seconds:g} s; send them at "
        "once (the server's --header-timeout)"
    )
    body = json.dumps({"success": False, "message": message}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits (seconds, and a count); see the module's description."""

    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0 seconds")


def fit_to_open_files(wanted: int) -> tuple[int, str | None]:
    """``wanted`` connections, or fewer if the open-files limit cannot hold them; and why.

    The soft limit is raised toward the hard one first, as far as needed.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted, None
    fitted = soft - RESERVED_DESCRIPTORS if soft > 2 * RESERVED_DESCRIPTORS else soft // 2
    fitted = max(1, fitted)
    note = (
        f"--max-connections lowered from {wanted} to {fitted}: this process may open {soft} "
        f"files (ulimit -n); raise that limit to serve more connections at once"
    )
    return fitted, note


class _Conn(asyncio.Protocol):
    """One client connection: aiohttp's protocol inside, the guard's bookkeeping around it."""

    __slots__ = ("admitted", "deadline", "guard", "heard", "inner", "state", "transport")

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.state: _State = "waiting"
        self.deadline = 0.0
        self.heard = False  # bytes of a request arrived in this waiting spell
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.guard._admit(self):
            transport.abort()
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.state == "idle":
            self.guard._start_waiting(self)
        if self.state == "waiting":
            self.heard = True
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard._forget(self)
        if self.admitted:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def close(self, *, timed_out: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if timed_out and self.heard:
            self.transport.write(_timeout_408(self.guard.limits.header_timeout))
        self.transport.close()


class ConnectionGuard:
    """Admits, times and evicts the connections of one server (see the module's description)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.max_connections = limits.max_connections
        # Connections with no request in progress (or still sending it), longest waiting first:
        # the ones to evict when full, and the ones the sweeper times out.
        self._waiting: OrderedDict[_Conn, None] = OrderedDict()
        self._busy: set[_Conn] = set()
        self._by_protocol: dict[object, _Conn] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._warned = -_WARN_EVERY
        self.timed_out = 0
        self.evicted = 0
        self.refused = 0

    @property
    def open(self) -> int:
        """Connections open now."""
        return len(self._waiting) + len(self._busy)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that guards ``factory``'s protocols."""

        def guarded() -> asyncio.Protocol:
            return _Conn(self, factory())

        return guarded

    # -- the connection's side ------------------------------------------------------------

    def _admit(self, conn: _Conn) -> bool:
        if self.open >= self.max_connections:
            if not self._waiting:
                self.refused += 1
                self._warn_full()
                return False
            oldest = next(iter(self._waiting))
            self._drop(oldest)
            oldest.close(timed_out=False)
            self.evicted += 1
            self._warn_full()
        self._by_protocol[conn.inner] = conn
        self._start_waiting(conn)
        self._ensure_sweeping()
        return True

    def _start_waiting(self, conn: _Conn) -> None:
        self._wait(conn, "waiting", self.limits.header_timeout)

    def _wait(self, conn: _Conn, state: _State, timeout: float) -> None:
        """``conn`` has no request in progress now: evictable, timed out after ``timeout``."""
        conn.state = state
        conn.heard = False
        conn.deadline = time.monotonic() + timeout
        self._busy.discard(conn)
        self._waiting[conn] = None
        self._waiting.move_to_end(conn)

    def _forget(self, conn: _Conn) -> None:
        self._drop(conn)
        self._by_protocol.pop(conn.inner, None)

    def _drop(self, conn: _Conn) -> None:
        self._waiting.pop(conn, None)
        self._busy.discard(conn)

    # -- the request's side (from the middleware) -----------------------------------------

    def request_started(self, protocol: object) -> _Conn | None:
        """A request's headers are in; its body is still to come (still evictable)."""
        conn = self._by_protocol.get(protocol)
        if conn is not None and conn.state != "busy":
            conn.state = "body"
        return conn

    def request_running(self, conn: _Conn) -> None:
        """The request is read: its handler runs, and the connection is not evicted."""
        if conn.state == "body":
            conn.state = "busy"
            self._waiting.pop(conn, None)
            self._busy.add(conn)

    def request_done(self, conn: _Conn) -> None:
        """The response is out: the connection idles until its next request."""
        if conn.transport is None or conn.transport.is_closing():
            return
        self._wait(conn, "idle", self.limits.keepalive_timeout)

    # -- timing ---------------------------------------------------------------------------

    def _ensure_sweeping(self) -> None:
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self._tick(), self._sweep)

    def _tick(self) -> float:
        shortest = min(self.limits.header_timeout, self.limits.keepalive_timeout)
        return min(1.0, max(0.05, shortest / 4))

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        expired = [
            conn
            for conn in self._waiting
            if conn.state in ("waiting", "idle") and conn.deadline <= now
        ]
        for conn in expired:
            self._drop(conn)
            conn.close(timed_out=True)
            self.timed_out += 1
        if self.open:
            self._ensure_sweeping()

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning(
                "at the connection limit (%d open): closing the longest-waiting connection for "
                "each new one (%d so far, %d refused with every connection busy); see "
                "--max-connections",
                self.max_connections,
                self.evicted,
                self.refused,
            )

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


GUARD: web.AppKey[ConnectionGuard] = web.AppKey("promptrun_connection_guard")


@web.middleware
async def connection_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the body within the body timeout, and tell the guard when a request runs."""
    guard = request.config_dict[GUARD]
    conn = guard.request_started(request.protocol)
    try:
        with body_lease(request):  # the body's share of --max-inflight-body-bytes
            return await _read_then_handle(request, handler, guard, conn)
    finally:
        if conn is not None:
            guard.request_done(conn)


async def _read_then_handle(
    request: web.Request, handler: Handler, guard: ConnectionGuard, conn: _Conn | None
) -> web.StreamResponse:
    body_pending = request.body_exists
    # Only for a matched route: the slashes middleware must still be able to clone an
    # unmatched "//path" request, which it cannot once the body is read. Such a request
    # stays evictable while its handler reads the body.
    if body_pending and request.match_info.http_exception is None:
        await refuse_unknown_header_key(request)  # before a byte of the body is read
        timeout = guard.limits.body_timeout
        try:
            async with asyncio.timeout(timeout):
                await read_body_bytes(request)  # kept for the handler
        except TimeoutError:
            response = error_response(
                408,
                f"the request body did not arrive within {timeout:g} s; send it at once "
                "(the server's --body-timeout)",
            )
            response.force_close()
            return response
        body_pending = False
    if conn is not None and not body_pending:
        guard.request_running(conn)
    return await handler(request)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionGuard`."""

    __slots__ = ("_guard", "_host", "_port")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.wrap(json_errors(server)),
            self._host,
            self._port,
            reuse_address=True,
            backlog=ACCEPT_BATCH,
        )
        for listening in self._server.sockets:
            with listening.dup() as sock:  # the same socket: only its queue grows
                sock.listen(LISTEN_QUEUE)

    async def stop(self) -> None:
        self._guard.close()
        await super().stop()


def new_runner(app: web.Application, *, shutdown_timeout: float) -> web.AppRunner:
    """The runner for ``app``, with aiohttp's own idle timer as a backstop behind the guard's
    (later than the guard's, which answers a half-sent request with a 408 first)."""
    limits = app[GUARD].limits
    return web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=2 * max(limits.header_timeout, limits.keepalive_timeout),
    )


async def start_site(runner: web.AppRunner, host: str, port: int) -> str | None:
    """Listen on ``host:port`` through the app's guard; a note if the cap had to be lowered."""
    guard = runner.app[GUARD]
    guard.max_connections, note = fit_to_open_files(guard.limits.max_connections)
    await GuardedSite(runner, host, port, guard).start()
    return note
