"""The part every test proxy shares: listen on a free loopback port, forward a request.

A subclass writes ``_handle(request)``; :meth:`LoopbackProxy.forward` sends the request on to a
target and reads its whole answer (hop-by-hop headers dropped both ways).
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
from aiohttp import web

__all__ = ["LoopbackProxy"]

_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}


class LoopbackProxy:
    """``async with Proxy(...) as proxy``: a client points at ``proxy.base_url``."""

    #: keyword arguments for the proxy's ``web.AppRunner`` and ``web.Application``
    runner_options: ClassVar[dict[str, Any]] = {}
    app_options: ClassVar[dict[str, Any]] = {}

    base_url = ""
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Any:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(**self.app_options)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1, **self.runner_options)
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError  # what the proxy does with a request: its subclass says

    async def forward(self, request: web.Request, target: str) -> tuple[int, bytes, dict[str, str]]:
        """``request`` sent to ``target`` (a base URL): the answer's status, body and headers."""
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._http.request(
            request.method, target + request.path_qs, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            return answer.status, payload, kept
