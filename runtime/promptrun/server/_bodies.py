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
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["read_body_bytes", "unread_body_middleware"]


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
    """The whole body (inflated), read once; a 413 past the app's ``client_max_size``."""
    cached = request._read_bytes  # aiohttp's own cache of the body, shared with request.read()
    if cached is not None:
        return cached
    limit = request.client_max_size
    compressed = "Content-Encoding" in request.headers
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if limit and len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
        if compressed and not request.content.is_eof():
            # The next step inflates here, with no network wait: let other requests run first.
            await asyncio.sleep(0)
    # There is no public setter; request.read(), .text(), .json() and .post() all return this.
    request._read_bytes = bytes(body)
    return request._read_bytes
