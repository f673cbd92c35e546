"""An HTTP proxy on loopback that loses answers after the server acted on the request.

It forwards each request to the server and waits for its answer, so the server has done what
was asked (stored the record); for the requests a test chose, it then closes the client's
connection without passing the answer on, as a load balancer timing out or a network cut
can. It can also hide paths (a 404, as from the hosted API), e.g. ``/promptrun/v1/info``, so
that a client takes the server for one without batches. Every request is recorded with its
``Idempotency-Key`` header.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import aiohttp
from aiohttp import web

__all__ = ["CutProxy", "Forwarded"]

_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}


@dataclass(frozen=True, slots=True)
class Forwarded:
    path: str
    idempotency_key: str | None
    cut: bool  # the server answered; the client never saw it


class CutProxy:
    """``async with CutProxy(server_url) as proxy``: point a client at ``proxy.base_url``.

    ``cut_all`` paths lose every answer; ``cut_every_other`` paths lose the 1st, 3rd, 5th...
    answer (one request at a time: each first attempt is lost, its retry answered);
    ``hide`` paths are answered 404 without reaching the server.
    """

    def __init__(
        self,
        target: str,
        *,
        cut_all: tuple[str, ...] = (),
        cut_every_other: tuple[str, ...] = (),
        hide: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.cut_all = cut_all
        self.cut_every_other = cut_every_other
        self.hide = hide
        self.base_url = ""
        self.seen: list[Forwarded] = []
        self._counts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CutProxy:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._http is not None
        await self._runner.cleanup()
        await self._http.close()

    def cuts(self, path: str) -> int:
        """How many answers to ``path`` were lost."""
        return sum(1 for f in self.seen if f.path == path and f.cut)

    def _cuts(self, path: str) -> bool:
        if path in self.cut_all:
            return True
        if path in self.cut_every_other:
            self._counts[path] += 1
            return self._counts[path] % 2 == 1
        return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        if request.path in self.hide:
            return web.json_response({"success": False, "message": "not found"}, status=404)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._http.request(
            request.method, self.target + request.path_qs, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            status = answer.status
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
        cut = self._cuts(request.path)
        key = request.headers.get("Idempotency-Key")
        self.seen.append(Forwarded(request.path, key, cut))
        if cut:
            assert request.transport is not None
            request.transport.abort()  # the server stored it; the client hears nothing
            await asyncio.Event().wait()  # cancelled with the connection: nothing is written
        return web.Response(status=status, body=payload, headers=kept)
