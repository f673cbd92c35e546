"""A recording proxy on loopback: what each path sends, and the same answers for both.

In ``record`` mode it forwards every request to the upstream (the sandbox) and keeps the
answer (status, headers, body bytes, and whether the upstream cut the body short); in
``replay`` mode it answers the same sequence again, byte for byte, cutting where the upstream
cut. So the SDK path and the native path get identical answers (ids included) and their
results can be compared for equality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

#: Headers of the exchange itself rather than of the API call, never compared: the user
#: agent and the SDK's telemetry (X-Stainless-*), what each HTTP stack adds on its own, and
#: google-genai's ``x-goog-api-client``, the W3C propagation headers that an OpenTelemetry instrumentation of the SDK's HTTP client
#: adds (the peer SDK's tracing, run earlier in the same process, installs one).
TRANSPORT_HEADERS = frozenset(
    {
        "user-agent", "host", "content-length", "accept-encoding", "connection",
        "traceparent", "tracestate", "baggage", "x-goog-api-client",
    }
)  # fmt: skip
_HOP = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "server"}
)  # Date is replayed: google-genai keeps the response headers in its answer


@dataclass(frozen=True)
class Sent:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: Any

    @property
    def api_headers(self) -> dict[str, str]:
        return {
            k: v
            for k, v in self.headers.items()
            if k not in TRANSPORT_HEADERS and not k.startswith("x-stainless-")
        }


@dataclass
class Tape:
    upstream: str
    mode: str = "record"
    sent: list[Sent] = field(default_factory=list)
    answers: list[tuple[int, list[tuple[str, str]], bytes, bool]] = field(default_factory=list)
    _next: int = 0

    def replay(self) -> None:
        self.mode, self._next, self.sent = "replay", 0, []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = json.loads(raw) if raw else None
        self.sent.append(Sent(request.method, request.path_qs, headers, body))
        if self.mode == "record":
            answer = await self._forward(request, raw)
            self.answers.append(answer)
        else:
            answer = self.answers[self._next]
            self._next += 1
        status, answer_headers, data, cut = answer
        response = web.StreamResponse(status=status)
        for k, v in answer_headers:
            response.headers.add(k, v)
        await response.prepare(request)
        await response.write(data)
        if cut:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    async def _forward(
        self, request: web.Request, raw: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        forward = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with (
            aiohttp.ClientSession(auto_decompress=True) as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=raw, headers=forward
            ) as up,
        ):
            pieces: list[bytes] = []
            cut = False
            try:
                async for piece in up.content.iter_any():
                    pieces.append(piece)
            except aiohttp.ClientPayloadError:
                cut = True
            kept = [(k, v) for k, v in up.headers.items() if k.lower() not in _HOP]
            return up.status, kept, b"".join(pieces), cut


async def start_tape(upstream: str) -> tuple[Tape, web.AppRunner, str]:
    """A running proxy in front of ``upstream`` (an origin, ``http://host:port``)."""
    tape = Tape(upstream)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", tape.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return tape, runner, f"http://127.0.0.1:{port}"
