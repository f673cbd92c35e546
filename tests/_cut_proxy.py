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
from typing import Any, ClassVar

from aiohttp import web

from ._loopback_proxy import LoopbackProxy

__all__ = ["CutProxy", "Forwarded"]


@dataclass(frozen=True, slots=True)
class Forwarded:
    path: str
    idempotency_key: str | None
    cut: bool  # the server answered; the client never saw it


class CutProxy(LoopbackProxy):
    """``async with CutProxy(server_url) as proxy``: point a client at ``proxy.base_url``.

    ``cut_all`` paths lose every answer; ``cut_every_other`` paths lose the 1st, 3rd, 5th...
    answer (one request at a time: each first attempt is lost, its retry answered);
    ``hide`` paths are answered 404 without reaching the server.
    """

    app_options: ClassVar[dict[str, Any]] = {"client_max_size": 64 * 1024 * 1024}
    runner_options: ClassVar[dict[str, Any]] = {"handler_cancellation": True}

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
        self.seen: list[Forwarded] = []
        self._counts: Counter[str] = Counter()

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
        if request.path in self.hide:
            return web.json_response({"success": False, "message": "not found"}, status=404)
        status, payload, kept = await self.forward(request, self.target)
        cut = self._cuts(request.path)
        key = request.headers.get("Idempotency-Key")
        self.seen.append(Forwarded(request.path, key, cut))
        if cut:
            assert request.transport is not None
            request.transport.abort()  # the server stored it; the client hears nothing
            await asyncio.Event().wait()  # cancelled with the connection: nothing is written
        return web.Response(status=status, body=payload, headers=kept)
