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

from .._loopback_proxy import LoopbackProxy

__all__ = ["FailoverProxy"]


class FailoverProxy(LoopbackProxy):
    def __init__(self, targets: list[str], websockets: str) -> None:
        self.targets = targets
        self.websockets = websockets

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        for target in self.targets:
            try:
                status, payload, kept = await self.forward(request, target)
            except aiohttp.ClientConnectionError:
                continue
            return web.Response(status=status, body=payload, headers=kept)
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
