"""Request and response plumbing shared by the routes: JSON in, JSON out, errors as data."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from promptrun.server._bodies import read_body_bytes
from promptrun.wire._limits import MAX_ID

__all__ = [
    "LONE_SURROGATE",
    "ApiError",
    "ErrorShape",
    "decode_body",
    "error_response",
    "errors_as",
    "json_response",
    "lone_surrogate",
    "path_id",
    "query_int",
    "read_body",
    "shaped_error",
]

T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., Any])
# How an endpoint writes its errors, when not as {"success": false, "message": ...}:
# (request, status, message, headers) -> response.
ErrorShape = Callable[[web.Request, int, str, "dict[str, str] | None"], web.Response]
_SHAPE = "__promptrun_error_shape__"

_encode = msgspec.json.encode


class ApiError(Exception):
    """An answer the client gets as ``{"success": false, "message": ...}`` with ``status``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    response = json_response({"success": False, "message": message}, status)
    if headers:
        response.headers.update(headers)
    return response


def errors_as(shape: ErrorShape) -> Callable[[H], H]:
    """Mark a handler whose errors (its own and the middlewares') ``shape`` writes: an
    endpoint with a protocol of its own, such as OTLP's ``google.rpc.Status``."""

    def mark(handler: H) -> H:
        setattr(handler, _SHAPE, shape)
        return handler

    return mark


def shaped_error(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The error answer in the shape the matched handler asked for (JSON by default)."""
    shape: ErrorShape | None = getattr(request.match_info.handler, _SHAPE, None)
    if shape is None:
        return error_response(status, message, headers)
    return shape(request, status, message, headers)


async def read_body(request: web.Request, decoder: msgspec.json.Decoder[T]) -> T:
    """The body decoded with ``decoder``; an empty body counts as ``{}``.

    A body over the app's size limit raises aiohttp's 413; malformed JSON and schema
    mismatches raise msgspec's errors, which the error middleware answers with a 400.
    """
    return decode_body(await read_body_bytes(request), decoder)


def decode_body(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """``raw`` decoded with ``decoder`` (empty is ``{}``).

    msgspec's own errors propagate (the error middleware answers them with a 400); the two
    it lets through for hostile bodies become a 400 here.
    """
    try:
        return decoder.decode(raw or b"{}")
    except msgspec.ValidationError as exc:
        if not raw:
            raise ApiError(
                400, f"the request body is empty; a JSON object is needed: {exc}"
            ) from None
        raise
    except msgspec.DecodeError as exc:
        if lone_surrogate(raw):
            raise ApiError(400, f"request body is not valid JSON: {LONE_SURROGATE}") from None
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, f"request body is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


LONE_SURROGATE = (
    "it has a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), which is "
    "not text; send valid UTF-8"
)
_LONE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def lone_surrogate(raw: bytes) -> bool:
    """Whether JSON text has a ``\\uD800``-``\\uDFFF`` escape without its pair (msgspec
    reports one at the end of a string as "Input data was truncated")."""
    return b"\\u" in raw and _LONE.search(raw) is not None


def query_int(
    request: web.Request, name: str, default: int, *, low: int, high: int | None = None
) -> int:
    """An integer query parameter within ``[low, high]``, else a 400 that says so."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name}={raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"query parameter {name}={value} must be {bounds}")
    return value


def path_id(request: web.Request, what: str) -> int:
    """The ``{id}`` of the path as a positive integer, else a 400 naming ``what`` it is.

    ASCII digits only: ``"²".isdigit()`` is true, yet ``int("²")`` fails.
    """
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ApiError(400, f"{what} {raw!r:.80} must be a positive integer")
    if int(raw) > MAX_ID:
        raise ApiError(400, f"{what} {raw!r:.80} must be a positive integer of at most {MAX_ID}")
    return int(raw)
