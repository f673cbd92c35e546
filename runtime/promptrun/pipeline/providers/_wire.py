"""What every native provider transport shares: one HTTP exchange with the SDKs' retry policy,
and a server-sent-event reader.

A native transport sends the request itself on the runtime's pooled aiohttp session and
decodes the answer with msgspec; the provider SDK is used only for its typed models and its
exception classes. The retry policy is the one the openai and anthropic SDKs share (their
``_base_client``): 2 retries; statuses 408, 409, 429 and 5xx and connection errors; a wait of
``min(0.5 * 2**n, 8)`` seconds less up to 25% jitter, or the server's ``retry-after-ms`` /
``Retry-After`` (seconds or an HTTP date) when it is between 0 and 120 seconds (longer: no
retry); ``x-should-retry: true|false`` obeyed. A transport whose SDK differs (google-genai:
no retries but one of a refused connection, a lazily started stream, its own stream reader)
says so through :class:`NativeWire`'s hooks.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import anyio
from aiohttp import ClientError, ClientTimeout

from promptrun.pipeline.providers._base import CallPlan

__all__ = [
    "END",
    "MAX_RETRIES",
    "SKIP",
    "Exchange",
    "NativeWire",
    "WireFailure",
    "iter_sse",
    "retry_after",
    "send",
]

MAX_RETRIES = 2
_INITIAL_DELAY = 0.5
_MAX_DELAY = 8.0
_MAX_RETRY_AFTER = 120.0
_RETRY_STATUSES = frozenset({408, 409, 429})
#: The SDKs' httpx timeouts: 5 s to connect, 600 s for each read (not for the whole call: a
#: stream may last longer), no total.
_TIMEOUT = ClientTimeout(total=None, sock_connect=5.0, sock_read=600.0)


@dataclass(frozen=True, slots=True)
class Exchange:
    """Where and what to send: a POST of JSON bytes with these headers."""

    url: str
    headers: Mapping[str, str]
    body: bytes


class WireFailure(Exception):
    """A request that got no answer (connection refused or cut, or timed out), retries spent.

    Each transport turns it into its SDK's connection or timeout error.
    """

    def __init__(self, cause: BaseException, *, timed_out: bool) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.timed_out = timed_out


#: What :meth:`NativeWire.event` returns to end a stream here (``[DONE]``) ...
END: Final = object()
#: ... or to pass over an event (a ping, a keep-alive).
SKIP: Final = object()


class NativeWire(ABC):
    """A native transport: one POST per call or stream, the SDK's retries, the SDK's objects.

    :meth:`call` and :meth:`stream` (the :class:`~._base.Wire` protocol) are written once
    here; a subclass sets ``session`` (the pooled aiohttp session) and says what differs:

    - :meth:`covers`: whether it sends a plan exactly as the SDK would;
    - :meth:`exchange`: the URL, headers and JSON body for a plan (a subclass of
      :class:`Exchange` may carry more, for the hooks that read the answer);
    - :meth:`answer`: the SDK's object for a 2xx answer to a plain call;
    - :meth:`event`: the SDK's object for one server-sent event, or :data:`SKIP` /
      :data:`END`; it raises the SDK's exception for an error event;
    - :meth:`status_error`: the SDK's exception for a non-2xx answer (after the retries);
    - :meth:`wire_error`: the SDK's exception when no answer came (``failure.__cause__`` is
      the aiohttp error), or the stream was cut while read (``failure.__cause__`` is None;
      the aiohttp error becomes the raised exception's ``__cause__``); None when the SDK
      lets the aiohttp error itself through.

    Where an SDK's policy differs from the openai / anthropic one, a subclass also says so:

    - :meth:`post`: the send and its retries (default :func:`send`, the openai / anthropic
      policy); it returns an answer to a stream unread when :meth:`check` will accept it;
    - :meth:`check`: raises the SDK's exception for an answer it refuses (default: any
      status from 300 up, through :meth:`status_error`);
    - :meth:`read`: the stream's ``(event, data)`` pairs (default :func:`iter_sse`);
    - ``lazy_stream``: the stream's request is sent on its first read, not by :meth:`stream`.

    Every hook but :meth:`post`, :meth:`check` and :meth:`read` is synchronous; ``response``
    is the aiohttp response (``status``, ``headers``, ``raw_headers``). The stream's
    connection is released when its iterator ends, fails or is closed.
    """

    session: Any
    #: Whether the stream's request waits for the first read of the iterator (google-genai).
    lazy_stream: ClassVar[bool] = False

    @abstractmethod
    def covers(self, plan: CallPlan, stream: bool) -> bool: ...

    @abstractmethod
    def exchange(self, plan: CallPlan, stream: bool) -> Exchange: ...

    @abstractmethod
    def answer(self, plan: CallPlan, exchange: Exchange, response: Any, body: bytes) -> Any: ...

    @abstractmethod
    def event(
        self, plan: CallPlan, exchange: Exchange, response: Any, name: str | None, data: Any
    ) -> Any: ...

    def status_error(self, response: Any, exchange: Exchange, body: bytes) -> Exception:
        """Used by the default :meth:`check` only: a subclass with its own may skip it."""
        raise TypeError(f"{type(self).__name__} overrides neither check() nor status_error()")

    @abstractmethod
    def wire_error(self, failure: WireFailure, exchange: Exchange) -> Exception | None: ...

    async def post(self, exchange: Exchange, *, stream: bool) -> tuple[Any, bytes]:
        return await send(self.session, exchange, stream=stream)

    async def check(self, response: Any, exchange: Exchange, body: bytes) -> None:
        if response.status >= 300:
            raise self.status_error(response, exchange, body)

    def read(self, response: Any) -> AsyncIterator[tuple[str | None, Any]]:
        return iter_sse(response)

    async def call(self, plan: CallPlan) -> Any:
        exchange = self.exchange(plan, False)
        response, body = await self._send(exchange, stream=False)
        await self.check(response, exchange, body)
        return self.answer(plan, exchange, response, body)

    async def stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        exchange = self.exchange(plan, True)
        if self.lazy_stream:
            return self._events(plan, exchange, None)
        return self._events(plan, exchange, await self._open(exchange))

    async def _open(self, exchange: Exchange) -> Any:
        response, body = await self._send(exchange, stream=True)
        await self.check(response, exchange, body)
        return response

    async def _send(self, exchange: Exchange, *, stream: bool) -> tuple[Any, bytes]:
        try:
            return await self.post(exchange, stream=stream)
        except WireFailure as exc:
            error = self.wire_error(exc, exchange)
            cause = exc.__cause__
            if error is not None or cause is None:
                raise (error or exc) from cause
        raise cause  # the SDK lets the aiohttp error itself through

    async def _events(
        self, plan: CallPlan, exchange: Exchange, response: Any | None
    ) -> AsyncIterator[Any]:
        if response is None:  # lazy_stream: sent now, on the first read
            response = await self._open(exchange)
        try:
            try:
                async for name, data in self.read(response):
                    item = self.event(plan, exchange, response, name, data)
                    if item is END:
                        break
                    if item is not SKIP:
                        yield item
            except (ClientError, OSError, TimeoutError) as exc:
                failure = WireFailure(exc, timed_out=isinstance(exc, TimeoutError))
                error = self.wire_error(failure, exchange)
                if error is None:
                    raise
                raise error from exc
        finally:
            response.release()


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait (``retry-after-ms``, then ``Retry-After``), or None."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        if delay == math.inf and value.strip().lower() not in ("inf", "+inf", "infinity"):
            return _MAX_RETRY_AFTER + 1
        return delay / divisor
    value = headers.get("retry-after")
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return float(email.utils.mktime_tz(parsed) - time.time())
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _should_retry(status: int, headers: Mapping[str, str]) -> bool:
    after = retry_after(headers)
    if after is not None and math.isfinite(after) and after > _MAX_RETRY_AFTER:
        return False
    said = headers.get("x-should-retry")
    if said == "true":
        return True
    if said == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def _wait(retries_done: int, headers: Mapping[str, str] | None) -> float:
    after = retry_after(headers) if headers is not None else None
    if after is not None and math.isfinite(after) and 0 < after <= _MAX_RETRY_AFTER:
        return after
    delay = min(_INITIAL_DELAY * 2.0 ** min(retries_done, 1000), _MAX_DELAY)
    return max(delay * (1 - 0.25 * random.random()), 0.0)


async def send(
    session: Any,
    exchange: Exchange,
    *,
    stream: bool,
    retry_header: Callable[[int], Mapping[str, str]] | None = None,
    max_retries: int = MAX_RETRIES,
) -> tuple[Any, bytes]:
    """POST ``exchange``: ``(aiohttp response, its body)`` once the status is known.

    A 2xx answer to a ``stream`` is returned unread (body ``b""``; the caller releases it).
    Any other answer is returned read, after the retries the SDKs would make. Raises
    :class:`WireFailure` when no answer came. ``retry_header(n)``: extra headers for retry n.
    """
    retries = 0
    while True:
        headers = exchange.headers
        if retries and retry_header is not None:
            headers = {**headers, **retry_header(retries)}
        try:
            response = await session.post(
                exchange.url, data=exchange.body, headers=headers, timeout=_TIMEOUT
            )
            if response.status < 300 and stream:
                return response, b""
            try:
                body = await response.read()
            finally:
                response.release()
        except (TimeoutError, ClientError, OSError) as exc:
            if retries >= max_retries:
                raise WireFailure(exc, timed_out=isinstance(exc, TimeoutError)) from exc
            await anyio.sleep(_wait(retries, None))
            retries += 1
            continue
        if response.status < 300:
            return response, body
        if retries >= max_retries or not _should_retry(response.status, response.headers):
            return response, body
        await anyio.sleep(_wait(retries, response.headers))
        retries += 1


async def iter_sse(response: Any) -> AsyncIterator[tuple[str | None, str]]:
    """The ``(event, data)`` pairs of a server-sent-event stream, as the SDKs decode them.

    Events are separated by a blank line (``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r``); ``data``
    lines are joined with ``\\n``; comments and events with neither event nor data are skipped.
    """
    buffer = b""
    async for piece in response.content.iter_any():
        buffer += piece
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block, buffer = buffer[:end], buffer[end + 2 :]
            event = _event(block)
            if event is not None:
                yield event
    if buffer.strip():
        event = _event(buffer)
        if event is not None:
            yield event


def _event(block: bytes) -> tuple[str | None, str] | None:
    name: str | None = None
    data: list[str] = []
    for raw in block.decode("utf-8").split("\n"):
        if not raw or raw.startswith(":"):
            continue
        field, _, value = raw.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value or None
    if name is None and not data:
        return None
    return name, "\n".join(data)
