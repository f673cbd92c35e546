"""An HTTP proxy on loopback that plays a load balancer in front of two server processes.

Each request goes to the first of ``targets`` that answers it (a process that died is passed
over, as by a load balancer's health checks); a websocket goes to ``websockets``, frames
relayed both ways. Routing is per request, whatever connection the client reuses.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

__all__ = ["FailoverProxy"]

_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}


class FailoverProxy:
    def __init__(self, targets: list[str], websockets: str) -> None:
        self.targets = targets
        self.websockets = websockets
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FailoverProxy:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
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
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        for target in self.targets:
            try:
                async with self._http.request(
                    request.method, target + request.path_qs, headers=headers, data=body
                ) as answer:
                    payload = await answer.read()
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
                    return web.Response(status=answer.status, body=payload, headers=kept)
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502, text="no server answered")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        client = web.WebSocketResponse(autoping=False)
        await client.prepare(request)
        async with self._http.ws_connect(
            self.websockets + request.path_qs, autoping=False
        ) as upstream:

            async def relay(source: object, sink: object) -> None:
                async for message in source:  # type: ignore[attr-defined]
                    if message.type is aiohttp.WSMsgType.TEXT:
                        await sink.send_str(message.data)  # type: ignore[attr-defined]
                    elif message.type is aiohttp.WSMsgType.PING:
                        await sink.ping(message.data)  # type: ignore[attr-defined]
                    elif message.type is aiohttp.WSMsgType.PONG:
                        await sink.pong(message.data)  # type: ignore[attr-defined]
                    else:
                        break
                await sink.close()  # type: ignore[attr-defined]

            tasks = [
                asyncio.ensure_future(relay(client, upstream)),
                asyncio.ensure_future(relay(upstream, client)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
        return client
