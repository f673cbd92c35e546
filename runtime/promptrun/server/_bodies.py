"""Request bodies: read in small steps, and compressed ones inflated only as far as needed.

aiohttp inflates a ``Content-Encoding: gzip`` (or deflate, br, zstd) body as it is read, in
bounded steps, and ``--max-body-bytes`` stops a handler's read at the limit (a 413). What is
left of the body after the answer is another matter: aiohttp reads it to the end before
reusing the connection ("lingering"), inflating it as it goes, on the event loop and without
yielding while inflated data keeps coming, so a 3 MB gzip body of 3 GB of zeros held every
other request for seconds. Here a compressed body that is not read to the end when the answer
leaves ends the connection instead: the answer is sent, nothing more is inflated, and the
connection closes.

Up to the limit, :func:`read_body_bytes` reads a body (the one way the server reads one) in
the stream's own steps (256 KiB, inflated), letting the event loop run between them: aiohttp's
``request.read()`` raises its step to ``--max-body-bytes``, so each step of a gzip bomb would
inflate 4 MiB on the loop, and eight MiB more are inflated ahead before it stops.

The limit is ``--max-body-bytes`` (4 MiB), except on the handlers marked
:func:`takes_records` (the logging endpoints), whose limit is ``--max-record-bytes``: one log
record holds a whole prompt and answer, and a long-context prompt is megabytes. A body whose
``Content-Length`` is already over the limit is refused before a byte of it is read, and a
client that asks ``Expect: 100-continue`` for one gets the 413 instead of ``100 Continue``
(:func:`expect_handler`). A ``Content-Encoding`` the server cannot decode is a 415.

Every body read here is counted against the server's budget of body bytes held at once
(``--max-inflight-body-bytes``, :mod:`promptrun.server._body_budget`) by the bytes that have
arrived (inflated), as it grows: a declared length reserves nothing. A body declared or grown
over the whole budget is a 413 naming both limits; one that cannot grow now, a 503 that closes
the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import hdrs, web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.http_exceptions import (
    ContentEncodingError,
    ContentLengthError,
    HttpProcessingError,
    TransferEncodingError,
)
from aiohttp.typedefs import Handler

from promptrun.server._body_budget import budget_capacity, busy_for, reserve_body

__all__ = [
    "CODINGS",
    "BodyOverBudget",
    "BodyTooLarge",
    "UnsupportedCoding",
    "body_limit",
    "expect_handler",
    "read_body_bytes",
    "refusal",
    "takes_records",
    "unread_body_middleware",
    "unreadable_body",
]

H = TypeVar("H", bound=Callable[..., object])
_RECORDS = "__promptrun_takes_records__"
# The content codings aiohttp inflates as it reads a body; any other is a 415.
CODINGS = ("gzip", "deflate") + (("br",) if HAS_BROTLI else ()) + (("zstd",) if HAS_ZSTD else ())


class BodyTooLarge(web.HTTPRequestEntityTooLarge):
    """A body over its endpoint's limit (``records``: the ``--max-record-bytes`` one)."""

    def __init__(self, limit: int, actual: int, *, records: bool) -> None:
        super().__init__(max_size=limit, actual_size=actual)
        self.limit = limit
        self.records = records


class BodyOverBudget(BodyTooLarge):
    """A body larger than every body the server holds at once may be (a 413)."""

    def __init__(self, limit: int, budget: int, actual: int, *, records: bool) -> None:
        super().__init__(limit, actual, records=records)
        self.budget = budget
        self.actual = actual


class UnsupportedCoding(Exception):
    """A body in a ``Content-Encoding`` the server cannot decode (a 415)."""

    def __init__(self, coding: str) -> None:
        super().__init__(coding)
        self.coding = coding


def _size(n: int) -> str:
    mib = n / (1 << 20)
    return f"{n} bytes ({mib:.4g} MiB)" if mib >= 1 else f"{n} bytes"


def refusal(exc: BodyTooLarge | UnsupportedCoding) -> tuple[int, str]:
    """The status and message for a body refused before or while it was read."""
    if isinstance(exc, UnsupportedCoding):
        return 415, (
            f"Content-Encoding {exc.coding!r:.80} is not supported: send the body as is, or "
            f"in one of {', '.join(CODINGS)} (a single coding)"
        )
    if isinstance(exc, BodyOverBudget):
        option, env = (
            ("--max-record-bytes", "PROMPTRUN_MAX_RECORD_BYTES")
            if exc.records
            else ("--max-body-bytes", "PROMPTRUN_MAX_BODY_BYTES")
        )
        return 413, (
            f"request body too large: at {_size(exc.actual)} or more it is over the "
            f"{_size(exc.budget)} the server holds of all request bodies at once "
            f"(--max-inflight-body-bytes, PROMPTRUN_MAX_INFLIGHT_BODY_BYTES), though within "
            f"this endpoint's limit of {_size(exc.limit)} ({option}, {env}); send less per "
            "request, or start the server with a larger --max-inflight-body-bytes"
        )
    if exc.records:
        return 413, (
            f"request body too large: the limit of this endpoint is {_size(exc.limit)} after "
            "decompression, and a log record must fit in one body; if the body holds several "
            "records, send fewer per request; a single record this large needs less in it, or "
            "the server started with a larger --max-record-bytes (PROMPTRUN_MAX_RECORD_BYTES)"
        )
    return 413, (
        f"request body too large: the limit is {_size(exc.limit)} after decompression; send "
        "less per request, or start the server with a larger --max-body-bytes "
        "(PROMPTRUN_MAX_BODY_BYTES)"
    )


def unreadable_body(request: web.Request, exc: BaseException) -> str:
    """What was wrong with a body aiohttp could not read, in words (not its exception repr)."""
    cause = exc.__cause__
    coding = request.headers.get(hdrs.CONTENT_ENCODING, "")
    if isinstance(cause, ContentEncodingError):
        return (
            f"the request body cannot be read: it is not valid {coding!r:.40} data, as its "
            "Content-Encoding says; send it uncompressed, or compressed whole"
        )
    if isinstance(cause, TransferEncodingError):
        return "the request body cannot be read: its chunked transfer encoding is malformed"
    if isinstance(cause, ContentLengthError):
        return "the request body cannot be read: it ended before its Content-Length"
    if isinstance(cause, HttpProcessingError) and cause.message:
        return f"the request body cannot be read: {' '.join(str(cause.message).split()):.200}"
    return "the request body cannot be read (the connection broke while it was sent)"


def takes_records(handler: H) -> H:
    """Mark a handler whose body is log records: its limit is ``--max-record-bytes``."""
    setattr(handler, _RECORDS, True)
    return handler


def _takes_records(request: web.Request) -> bool:
    return bool(getattr(request.match_info.handler, _RECORDS, False))


def body_limit(request: web.Request) -> int:
    """The largest body (inflated) the matched handler accepts, in bytes."""
    if _takes_records(request):
        from promptrun.server._state import CONFIG  # the server's config, not a sandbox's

        config = request.config_dict.get(CONFIG)
        if config is not None:
            return max(config.max_record_bytes, request.client_max_size)
    return request.client_max_size


def _check_head(request: web.Request) -> int:
    """The body's limit, once its coding and declared length are known to be acceptable."""
    coding = request.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()
    if coding and coding != "identity" and coding not in CODINGS:
        raise UnsupportedCoding(request.headers[hdrs.CONTENT_ENCODING])
    limit = body_limit(request)
    length = request.content_length
    if limit and not coding and length is not None and length > limit:
        raise BodyTooLarge(limit, length, records=_takes_records(request))
    if not coding and length is not None:
        _check_budget(request, limit, length)
    return limit


def _check_budget(request: web.Request, limit: int, size: int) -> None:
    """A 413 for a body that could never fit in the server's body budget."""
    budget = budget_capacity(request)
    if budget and size > budget:
        raise BodyOverBudget(limit, budget, size, records=_takes_records(request))


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: the 413 (or 415) at once when the body will be refused,
    instead of inviting the client to upload it, and the 503 when the server's body budget
    has no room for it now; else ``100 Continue`` as aiohttp does."""
    from promptrun.server._http import shaped_error  # _http reads bodies through this module

    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        return shaped_error(request, 417, f"unknown Expect: {expect!r:.80}; only 100-continue")
    try:
        _check_head(request)
    except (BodyTooLarge, UnsupportedCoding) as exc:
        response = shaped_error(request, *refusal(exc))
        response.force_close()  # the body was not sent: the connection cannot be reused
        return response
    busy = busy_for(request, request.content_length or 0)
    if busy is not None and hdrs.CONTENT_ENCODING not in request.headers:
        headers = {"Retry-After": str(busy.retry_after)}
        response = shaped_error(request, 503, busy.message, headers)
        response.force_close()
        return response
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's own handler: the answer is not started
    return None


class _UnreadBody(TimeoutError):
    """Ends aiohttp's lingering read of a compressed body (it stops on a timeout, as when its
    lingering time runs out, and then closes the connection)."""


@web.middleware
async def unread_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: close the connection rather than inflate an unread body."""
    try:
        response = await handler(request)
    except BaseException:
        _stop_inflating(request)
        raise
    if _stop_inflating(request):
        response.force_close()  # says "Connection: close" when the answer is not sent yet
    return response


def _stop_inflating(request: web.Request) -> bool:
    """End the body's stream if it is compressed and unread; whether it was."""
    if "Content-Encoding" not in request.headers or request.content.is_eof():
        return False
    request.content.set_exception(_UnreadBody("a compressed request body left unread"))
    return True


async def read_body_bytes(request: web.Request) -> bytes:
    """The whole body (inflated), read once; a 413 past :func:`body_limit`, a 415 for a
    coding the server cannot decode."""
    cached = request._read_bytes  # aiohttp's own cache of the body, shared with request.read()
    if cached is not None:
        return cached
    limit = _check_head(request)
    compressed = "Content-Encoding" in request.headers
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if limit and len(body) > limit:
            raise BodyTooLarge(limit, len(body), records=_takes_records(request))
        _check_budget(request, limit, len(body))
        reserve_body(request, len(body))  # what has arrived, not what is declared
        if compressed and not request.content.is_eof():
            # The next step inflates here, with no network wait: let other requests run first.
            await asyncio.sleep(0)
    # There is no public setter; request.read(), .text(), .json() and .post() all return this.
    request._read_bytes = bytes(body)
    return request._read_bytes
