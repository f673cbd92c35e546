"""A stub PromptLayer API on loopback, with the hosted API's shapes and failures on demand.

It runs in a thread of its own, so sync clients, async clients and subprocesses all reach it.
Templates are served from ``templates`` (the newest version of each name); a test queues what
the next requests to a path get instead: a status (``500``, ``429``, ...), ``"hang"`` (no answer
until the stub stops: a client timeout), ``"drop"`` (the connection closes: a connection
error), ``{"status", "body"}`` (that JSON) or ``{"status", "text", "content_type"?}`` (a body
that is not JSON, HTML by default). Every request is recorded, headers and body, so a test can look at what was sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Action = int | str | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class StubRegistry:
    """What the stub serves and what it saw; safe to drive from any thread."""

    def __init__(self) -> None:
        self.base_url = ""
        self.templates: dict[str, dict[str, Any]] = {}
        self.seen: list[Seen] = []
        self.hits: Counter[str] = Counter()
        self._queued: defaultdict[str, deque[Action]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._released: asyncio.Event | None = None
        #: When set, every request gets this status (a refusal with a message), whatever its path.
        self.refuse: int | None = None

    # -- the test's side -----------------------------------------------------------------
    def publish(self, name: str, template: dict[str, Any]) -> None:
        """Serve ``template`` (a registry answer, see :func:`chat_template`) as ``name``."""
        with self._lock:
            version = self.templates.get(name, {}).get("version", 0) + 1
            self.templates[name] = {**template, "prompt_name": name, "version": version}

    def queue(self, path: str, *actions: Action) -> None:
        """The next requests to ``path`` get these, in order; then the normal answer again."""
        with self._lock:
            self._queued[path].extend(actions)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(s.body) for s in self.seen if s.path == path and s.body]

    # -- the server's side ---------------------------------------------------------------
    def _next(self, path: str) -> Action | None:
        with self._lock:
            q = self._queued.get(path)
            return q.popleft() if q else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        with self._lock:
            self.seen.append(Seen(request.method, path, dict(request.headers), body))
            self.hits[path] += 1
        action = self._next(path) if self.refuse is None else self.refuse
        if action == "hang":
            assert self._released is not None
            await self._released.wait()
            return web.Response(status=503)
        if action == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)
        if isinstance(action, int):
            headers = {"Retry-After": "0"} if action == 429 else {}
            return web.json_response(
                {"success": False, "message": f"stub failure {action}"},
                status=action,
                headers=headers,
            )
        if isinstance(action, dict) and "text" in action:  # an answer that is not JSON
            return web.Response(
                text=action["text"],
                status=action["status"],
                content_type=action.get("content_type", "text/html"),
            )
        if isinstance(action, dict):
            return web.json_response(
                action.get("body", {}), status=action["status"], headers=action.get("headers")
            )
        return self._answer(request.method, path, body)

    def _answer(self, method: str, path: str, body: bytes) -> web.Response:
        if path.startswith("/prompt-templates/") and method == "POST":
            name = path.removeprefix("/prompt-templates/")
            with self._lock:
                template = self.templates.get(name)
            if template is None:
                return web.json_response(
                    {"success": False, "message": f"Prompt template {name} not found"},
                    status=404,
                )
            return web.json_response(template)
        if path == "/track-request":
            rid = next(self._ids)
            blueprint = {"prompt_template": {"type": "chat", "messages": []}, "metadata": {}}
            return web.json_response(
                {"success": True, "request_id": rid, "prompt_blueprint": blueprint}
            )
        if path == "/log-request":
            rid = next(self._ids)
            return web.json_response({"id": rid, "prompt_version": None}, status=201)
        if path.startswith("/library-track-") or path == "/track-group":
            return web.json_response({"success": True})
        if path == "/create-group":
            return web.json_response({"success": True, "id": next(self._ids)})
        if path == "/prompt-templates" and method == "GET":
            with self._lock:
                items = list(self.templates.values())
            return web.json_response({"items": items, "has_next": False})
        return web.json_response({"success": False, "message": "no such endpoint"}, status=404)

    async def _serve(self, started: Future[str], stop: asyncio.Event) -> None:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        started.set_result(f"http://{host}:{port}")
        try:
            await stop.wait()
        finally:
            self._released.set()
            await runner.cleanup()


def chat_template(
    text: str = "Hello {name}", *, provider: str = "openai", model: str = "gpt-4o-mini"
) -> dict[str, Any]:
    """A registry answer for a one-message chat template on ``provider``."""
    return {
        "id": 1,
        "prompt_template": {
            "type": "chat",
            "input_variables": ["name"],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": text}],
                    "template_format": "f-string",
                }
            ],
        },
        "metadata": {"model": {"provider": provider, "name": model, "parameters": {}}},
        "llm_kwargs": {"model": model, "messages": [{"role": "user", "content": text}]},
        "provider_base_url": None,
    }


@contextmanager
def stub_registry() -> Iterator[StubRegistry]:
    """A :class:`StubRegistry` serving on 127.0.0.1 until the block ends."""
    stub = StubRegistry()
    started: Future[str] = Future()
    holder: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            holder["loop"] = asyncio.get_running_loop()
            holder["stop"] = stop = asyncio.Event()
            await stub._serve(started, stop)

        asyncio.run(main())

    thread = threading.Thread(target=serve, name="stub-registry", daemon=True)
    thread.start()
    stub.base_url = started.result(timeout=10)
    try:
        yield stub
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(timeout=10)
