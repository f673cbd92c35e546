"""Websocket publications across server processes, through PostgreSQL's LISTEN/NOTIFY.

A workflow run finishes in the process that started it, while the client waiting for its
result may be connected to another. The websocket hub of each process hands every
publication to its relay (``send``), which NOTIFYs the others; each relay LISTENs on its own
connection and hands what other processes sent to its hub (``deliver``). A process ignores
its own notifications: its hub delivered those already.

A notification carries at most 8000 bytes; a larger publication is written to
``relayed_messages`` and the notification carries its id. The listening connection is
reopened when it drops (publications sent meanwhile are missed; clients fall back to polling
the execution's result).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from typing import Any

import asyncpg
import msgspec

from promptrun.server.store.base import Deliver

__all__ = ["CHANNEL", "PgRelay"]

log = logging.getLogger("promptrun.server.store")

CHANNEL = "promptrun_ws"  # then the schema's hash: deployments in other schemas stay apart
_NOTIFY_LIMIT = 7900  # PostgreSQL's payload limit is 8000 bytes
_KEEP_LARGE = 3600.0  # seconds a large publication stays readable
_RECONNECT_DELAY = 1.0
_QUEUE = 1024


class PgRelay:
    """One process's end of the relay: NOTIFY on send, LISTEN for the others' sends."""

    def __init__(self, url: str, pool: asyncpg.Pool[asyncpg.Record], deliver: Deliver) -> None:
        self._url = url
        self._pool = pool
        self.channel = CHANNEL
        self.deliver = deliver  # where publications from other processes go
        self.origin = uuid.uuid4().hex
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE)
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lost = asyncio.Event()
        self._closing = False
        self.sent = 0
        self.received = 0
        self.dropped = 0

    async def start(self) -> None:
        """Listen before returning, so nothing published after start-up is missed."""
        schema = await self._pool.fetchval("SELECT current_schema()")
        self.channel = f"{CHANNEL}_{hashlib.sha256(str(schema).encode()).hexdigest()[:16]}"
        await self._listen()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="promptrun-relay-send"),
            asyncio.create_task(self._keep_listening(), name="promptrun-relay-listen"),
        ]

    async def close(self) -> None:
        """Send what is queued (briefly), then stop listening."""
        self._closing = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=5)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None

    def send(self, workspace: int, channel: str, data: dict[str, Any]) -> None:
        """Queue ``data`` for the other processes; never blocks the caller."""
        message = msgspec.json.encode({"o": self.origin, "w": workspace, "c": channel, "d": data})
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("relay queue full; a websocket publication reaches this process only")

    # sending

    async def _send_loop(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._notify(message)
                self.sent += 1
            except Exception:
                self.dropped += 1
                log.exception("could not relay a websocket publication")
            finally:
                self._queue.task_done()

    async def _notify(self, message: bytes) -> None:
        payload = message.decode()
        if len(message) > _NOTIFY_LIMIT:
            async with self._pool.acquire() as conn, conn.transaction():
                now = time.time()
                await conn.execute(
                    "DELETE FROM relayed_messages WHERE created_at < $1", now - _KEEP_LARGE
                )
                stored = await conn.fetchval(
                    "INSERT INTO relayed_messages (payload, created_at) VALUES ($1, $2) "
                    "RETURNING id",
                    payload,
                    now,
                )
            payload = msgspec.json.encode({"o": self.origin, "r": stored}).decode()
        await self._pool.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    # listening

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._url)
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self.channel, self._on_notify)
        self._listener = conn
        self._lost.clear()

    async def _keep_listening(self) -> None:
        while True:
            await self._lost.wait()
            if self._closing:
                return
            log.warning("lost the relay's LISTEN connection; reconnecting")
            self._listener = None
            while True:
                await asyncio.sleep(_RECONNECT_DELAY)
                try:
                    await self._listen()
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("relay reconnect failed: %s", exc)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            message = msgspec.json.decode(str(payload))
            if message.get("o") == self.origin:
                return
            if "r" in message:
                task = asyncio.ensure_future(self._fetch_large(int(message["r"])))
                self._tasks.append(task)
                task.add_done_callback(self._tasks.remove)
                return
            self._hand_over(message)
        except Exception:
            log.exception("a relayed websocket publication could not be delivered")

    async def _fetch_large(self, message_id: int) -> None:
        payload = await self._pool.fetchval(
            "SELECT payload FROM relayed_messages WHERE id = $1", message_id
        )
        if payload is not None:
            self._hand_over(msgspec.json.decode(payload))

    def _hand_over(self, message: dict[str, Any]) -> None:
        self.received += 1
        self.deliver(int(message["w"]), str(message["c"]), message["d"])
