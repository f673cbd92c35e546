"""Requests aiohttp refuses before the application sees them, answered as JSON too.

A request line over 8190 bytes, an oversized or malformed header, ``Content-Length`` with
``Transfer-Encoding``, two ``Content-Length`` headers: aiohttp's HTTP parser refuses these
and answers a ``text/plain`` 400 holding the parser's message, which for a long line is a
``bytearray(...)`` repr echoing the path. Here they get the server's error shape,
``{"success": false, "message": ...}``, with a message in words and nothing of the request
echoed back.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import http_exceptions as hx
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["json_errors", "protocol_message"]

_LINE_LIMIT = 8190  # aiohttp's max_line_size and max_field_size
# A repr of request bytes in a parser's message: b'...', b"...", bytearray(...).
_QUOTES = re.compile(r"\bb['\"]|bytearray\(")


def protocol_message(status: int, exc: BaseException | None) -> str:
    """What was wrong with a request the HTTP parser refused, without echoing it."""
    if isinstance(exc, hx.LineTooLong):
        return (
            f"the request line or a header is longer than {_LINE_LIMIT} bytes; put long "
            "values in the request body"
        )
    if isinstance(exc, hx.BadHttpMethod):
        return "not an HTTP request (unknown method); is this an HTTPS client on an HTTP port?"
    if isinstance(exc, hx.InvalidHeader):
        return "a request header is malformed (bad name, or a control character in its value)"
    if isinstance(exc, hx.BadStatusLine):
        return "the request line is malformed; expected METHOD /path HTTP/1.1"
    if isinstance(exc, hx.InvalidURLError):
        return "the request's URL is malformed"
    if isinstance(exc, hx.ContentEncodingError):
        return "the request's Content-Encoding cannot be decoded by this server"
    if isinstance(exc, hx.HttpProcessingError) and exc.message:
        # llhttp's message is "<what>:\n\n  <the bytes around it>\n  <a ^ under the spot>":
        # only the what, and none at all if it still quotes the request.
        text = " ".join(str(exc.message).partition(":\n")[0].split())
        if not _QUOTES.search(text) and len(text) <= 200:
            return f"malformed HTTP request: {text}"
    if status >= 500:
        return "internal server error; the server log has the details"
    return "malformed HTTP request"


class _JsonErrorsHandler(RequestHandler):
    """aiohttp's protocol, its own error answers in the server's JSON shape."""

    __slots__ = ()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A request the parser refused is the client's mistake, and anyone can send one
        without a key: one DEBUG line (no traceback, which would quote the request's bytes),
        not an ERROR per request. Anything else is logged as aiohttp does."""
        exc = kw.get("exc_info")
        if isinstance(exc, hx.HttpProcessingError) and 400 <= exc.code < 500:
            remote = args[1] if len(args) > 1 else "?"
            self.logger.debug(
                "refused a malformed request from %s (%d): %s",
                remote,
                exc.code,
                protocol_message(exc.code, exc),
            )
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, checks the writer
        body = {"success": False, "message": protocol_message(status, exc)}
        response = web.Response(
            status=plain.status, body=json.dumps(body).encode(), content_type="application/json"
        )
        response.force_close()
        return response


def json_errors(factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """``factory`` (aiohttp's server), its protocols answering their own errors as JSON."""

    def make() -> asyncio.Protocol:
        protocol = factory()
        if type(protocol) is RequestHandler:
            # The same object layout (no new slots): only handle_error differs.
            protocol.__class__ = _JsonErrorsHandler
        return protocol

    return make
