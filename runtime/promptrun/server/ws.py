"""A Centrifugo JSON-protocol subset at ``/connection/websocket``, for workflow results.

What a client does (the peer SDK through centrifuge-python, and promptrun's own client):

1. ``POST /ws-token-request-library?capability=<channel>`` (API key) returns a token that
   authorises one channel of one workspace, for :attr:`WsSettings.token_ttl` seconds.
2. Open the websocket and send ``{"id": 1, "connect": {"token": ..., "name": ...}}``; the reply
   is ``{"id": 1, "connect": {"client": ..., "version": ..., "ping": P, "pong": true}}``.
3. ``{"id": 2, "subscribe": {"channel": ...}}`` (the token's channel, else error 103); the reply
   is ``{"id": 2, "subscribe": {}}``. ``unsubscribe`` works the same way.
4. Publications arrive as ``{"push": {"channel": ..., "pub": {"data": {...}}}}``.
5. Every P seconds the server sends ``{}`` (a ping) and the client answers ``{}`` (a pong); a
   client silent for ``P + ping_grace`` seconds is disconnected.

Several commands or replies may share a frame, one JSON object per line. A publication for a
channel nobody has subscribed to yet waits (for :attr:`WsSettings.pending_ttl` seconds) and is
delivered on subscribe: the peer subscribes without waiting for the ack and starts the run at
once, so the result can be ready before the subscription is. Tokens are signed with a secret
kept in the database (the same for every process on it, and across restarts), and on
PostgreSQL a hub's :class:`Relay` carries each publication to the other processes, so a
client may connect to any of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import msgspec
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from promptrun._version import __version__

__all__ = [
    "CHANNEL",
    "Hub",
    "Relay",
    "TokenError",
    "TokenSigner",
    "WsSettings",
    "routes",
]

log = logging.getLogger("promptrun.server")

CHANNEL = re.compile(r"workflows:(\d{1,18}):run:([0-9A-Za-z_-]{1,128})\Z")

# Centrifugo's error and disconnect codes, the ones this subset uses.
_BAD_REQUEST_CLOSE = 3501
_INVALID_TOKEN_CLOSE = 3500
_NO_PONG_CLOSE = 3012
_PERMISSION_DENIED = 103
_METHOD_NOT_FOUND = 104
_ALREADY_SUBSCRIBED = 105
_TOKEN_EXPIRED = 109
_KNOWN_METHODS = frozenset(
    {"connect", "subscribe", "unsubscribe", "publish", "presence", "presence_stats",
     "history", "ping", "send", "rpc", "refresh", "sub_refresh"}
)  # fmt: skip

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(slots=True)
class WsSettings:
    ping_interval: float = 25.0
    ping_grace: float = 10.0
    token_ttl: float = 600.0
    pending_ttl: float = 600.0
    connect_timeout: float = 10.0
    max_pending: int = 16


class TokenError(Exception):
    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """HMAC-signed tokens naming a workspace, a channel and an expiry."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, workspace: int, channel: str, ttl: float) -> tuple[str, float]:
        expires = time.time() + ttl
        payload = _encode({"w": workspace, "c": channel, "e": expires})
        return f"{_b64(payload)}.{_b64(self._sign(payload))}", expires

    def verify(self, token: str) -> tuple[int, str]:
        """(workspace, channel) for a valid token; TokenError otherwise."""
        try:
            head, _, tail = token.partition(".")
            payload, signature = _unb64(head), _unb64(tail)
        except (ValueError, TypeError):
            raise TokenError("invalid token") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise TokenError("invalid token")
        claims = _decode(payload)
        if claims["e"] < time.time():
            raise TokenError("token expired", expired=True)
        return int(claims["w"]), str(claims["c"])


class _Connection:
    """One websocket: a bounded outbox drained by one writer, so frames never interleave."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.client = str(uuid.uuid4())
        self.send, self.outbox = anyio.create_memory_object_stream[bytes](64)
        self.workspace: int | None = None
        self.channel: str | None = None  # the one the token allows
        self.subscribed: set[str] = set()
        self.connected = anyio.Event()

    def put(self, message: dict[str, Any]) -> None:
        try:
            self.send.send_nowait(_encode(message))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.debug("websocket client %s is not reading; dropping it", self.client)
            self.send.close()


class Relay(Protocol):
    """Carries a hub's publications to the hubs of the other server processes."""

    def send(self, workspace: int, channel: str, data: dict[str, Any]) -> None: ...


class Hub:
    """Who is subscribed to what, per workspace, and publications waiting for a subscriber."""

    def __init__(self, settings: WsSettings) -> None:
        self.settings = settings
        self.signer = TokenSigner()
        # Set while several server processes share a database (PostgreSQL); else None.
        self.relay: Relay | None = None
        self._subscribers: dict[tuple[int, str], set[_Connection]] = defaultdict(set)
        self._pending: dict[tuple[int, str], list[tuple[float, dict[str, Any]]]] = {}
        self._handlers: dict[str, Callable[[int, dict[str, Any]], object]] = {}

    def on(self, channel: str, handler: Callable[[int, dict[str, Any]], object]) -> None:
        """Hand publications on ``channel`` (one no client can subscribe to) to ``handler``,
        in this process and, through the relay, in every other: how one process asks
        another to act (cancel an execution it runs)."""
        if CHANNEL.match(channel):
            raise ValueError(f"{channel!r} is a channel clients subscribe to")
        self._handlers[channel] = handler

    def publish(self, workspace: int, channel: str, data: dict[str, Any]) -> int:
        """Deliver ``data`` on ``channel`` here and, through the relay, in other processes."""
        if self.relay is not None:
            self.relay.send(workspace, channel, data)
        return self.deliver(workspace, channel, data)

    def deliver(self, workspace: int, channel: str, data: dict[str, Any]) -> int:
        """Deliver to this process's subscribers; kept for a later one when there is none."""
        handler = self._handlers.get(channel)
        if handler is not None:
            handler(workspace, data)
            return 0
        key = (workspace, channel)
        push = {"push": {"channel": channel, "pub": {"data": data}}}
        targets = self._subscribers.get(key)
        self._expire()
        if not targets:
            waiting = self._pending.setdefault(key, [])
            waiting.append((time.monotonic() + self.settings.pending_ttl, push))
            del waiting[: -self.settings.max_pending]
            return 0
        for conn in list(targets):
            conn.put(push)
        return len(targets)

    def subscribe(self, conn: _Connection, workspace: int, channel: str) -> None:
        self._subscribers[(workspace, channel)].add(conn)
        conn.subscribed.add(channel)
        for _, push in self._pending.pop((workspace, channel), []):
            conn.put(push)

    def unsubscribe(self, conn: _Connection, workspace: int, channel: str) -> None:
        conn.subscribed.discard(channel)
        targets = self._subscribers.get((workspace, channel))
        if targets is not None:
            targets.discard(conn)
            if not targets:
                del self._subscribers[(workspace, channel)]

    def drop(self, conn: _Connection) -> None:
        if conn.workspace is not None:
            for channel in list(conn.subscribed):
                self.unsubscribe(conn, conn.workspace, channel)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, items in self._pending.items() if items[-1][0] < now]:
            del self._pending[key]


HUB = web.AppKey("promptrun_ws_hub", Hub)
routes = web.RouteTableDef()


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _ping_seconds(settings: WsSettings) -> float:
    # Whole seconds, as Centrifugo sends; below one second only for tests.
    interval = settings.ping_interval
    return interval if interval < 1 else round(interval)


def _error(command_id: int, code: int, message: str) -> dict[str, Any]:
    return {"id": command_id, "error": {"code": code, "message": message}}


def _handle(hub: Hub, conn: _Connection, command: Any) -> None:
    if not isinstance(command, dict):
        raise _Close(_BAD_REQUEST_CLOSE, "bad request")
    if not command:
        return  # a pong
    command_id = command.get("id")
    if not isinstance(command_id, int) or command_id <= 0:
        raise _Close(_BAD_REQUEST_CLOSE, "bad request")
    method = next((m for m in command if m != "id"), None)
    params = command.get(method) if method else None
    if method is None or not isinstance(params, dict):
        raise _Close(_BAD_REQUEST_CLOSE, "bad request")
    if conn.workspace is None and method != "connect":
        raise _Close(_BAD_REQUEST_CLOSE, "connect first")
    if method == "connect":
        if conn.workspace is not None:
            raise _Close(_BAD_REQUEST_CLOSE, "already connected")
        token = params.get("token")
        try:
            conn.workspace, conn.channel = hub.signer.verify(
                token if isinstance(token, str) else ""
            )
        except TokenError as exc:
            if exc.expired:
                conn.put(_error(command_id, _TOKEN_EXPIRED, "token expired"))
                return
            raise _Close(_INVALID_TOKEN_CLOSE, "invalid token") from None
        conn.connected.set()
        conn.put(
            {
                "id": command_id,
                "connect": {
                    "client": conn.client,
                    "version": f"promptrun {__version__}",
                    "ping": _ping_seconds(hub.settings),
                    "pong": True,
                },
            }
        )
        return
    assert conn.workspace is not None
    channel = params.get("channel")
    if method == "subscribe":
        if not isinstance(channel, str) or channel != conn.channel:
            conn.put(_error(command_id, _PERMISSION_DENIED, "permission denied"))
        elif channel in conn.subscribed:
            conn.put(_error(command_id, _ALREADY_SUBSCRIBED, "already subscribed"))
        else:
            conn.put({"id": command_id, "subscribe": {}})  # the ack goes before any publication
            hub.subscribe(conn, conn.workspace, channel)
    elif method == "unsubscribe":
        if isinstance(channel, str):
            hub.unsubscribe(conn, conn.workspace, channel)
        conn.put({"id": command_id, "unsubscribe": {}})
    elif method == "ping":
        conn.put({"id": command_id, "ping": {}})
    elif method in ("publish", "send", "rpc", "presence", "presence_stats", "history"):
        conn.put(_error(command_id, _PERMISSION_DENIED, "permission denied"))
    elif method in _KNOWN_METHODS:
        conn.put(_error(command_id, _METHOD_NOT_FOUND, "method not found"))
    else:
        raise _Close(_BAD_REQUEST_CLOSE, "bad request")


async def _read(hub: Hub, conn: _Connection, last_seen: list[float]) -> None:
    ws = conn.ws
    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            raise _Close(_BAD_REQUEST_CLOSE, "only the JSON protocol is spoken here")
        last_seen[0] = time.monotonic()
        for line in message.data.split("\n"):
            if not line.strip():
                continue
            try:
                command = _decode(line)
            except msgspec.DecodeError:
                raise _Close(_BAD_REQUEST_CLOSE, "bad request") from None
            _handle(hub, conn, command)


async def _write(conn: _Connection) -> None:
    async with conn.outbox:
        async for frame in conn.outbox:
            await conn.ws.send_str(frame.decode())


async def _ping(hub: Hub, conn: _Connection, last_seen: list[float]) -> None:
    settings = hub.settings
    with anyio.move_on_after(settings.connect_timeout):
        await conn.connected.wait()
    if not conn.connected.is_set():
        raise _Close(_BAD_REQUEST_CLOSE, "no connect command in time")
    interval = _ping_seconds(settings)
    while True:
        await anyio.sleep(interval)
        if time.monotonic() - last_seen[0] > interval + settings.ping_grace:
            raise _Close(_NO_PONG_CLOSE, "no pong")
        conn.put({})


@routes.get("/connection/websocket")
async def websocket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(max_msg_size=64 * 1024, autoping=True)
    offered = request.headers.get("Sec-WebSocket-Protocol")
    if offered is not None and not offered.strip():
        # centrifuge-python (through websockets) offers an empty subprotocol list; aiohttp
        # would log a warning per connection for it.
        headers = CIMultiDict(request.headers)
        del headers["Sec-WebSocket-Protocol"]
        request = request.clone(headers=headers)
    await ws.prepare(request)
    conn = _Connection(ws)
    last_seen = [time.monotonic()]
    close: _Close | None = None
    try:
        async with anyio.create_task_group() as tg:

            async def guarded(fn: Any, *args: Any) -> None:
                nonlocal close
                try:
                    await fn(*args)
                except _Close as exc:
                    close = exc
                tg.cancel_scope.cancel()

            tg.start_soon(guarded, _read, hub, conn, last_seen)
            tg.start_soon(guarded, _write, conn)
            tg.start_soon(guarded, _ping, hub, conn, last_seen)
    finally:
        hub.drop(conn)
        conn.send.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            if close is not None:
                await ws.close(code=close.code, message=close.reason.encode())
            else:
                await ws.close()
    return ws
