"""The server's REST API as an OpenAPI 3.1 document: ``GET /promptrun/v1/openapi.json``.

Each route module lists its endpoints as :class:`Operation` entries in ``OPERATIONS``, next
to the handlers; ``create_app`` collects those of the modules it mounts. The schemas come
from the msgspec Structs the handlers decode (so the size limits are in them) and the ones
in :mod:`promptrun.server._responses`. A test compares the document's paths with the app's
router, so an endpoint without an entry is caught.

The key goes in ``X-API-KEY`` or ``Authorization: Bearer``; endpoints whose request body has
an ``api_key`` field also take it there (the peer SDK does that).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from aiohttp import web

from promptrun._version import __version__
from promptrun.server._responses import ErrorBody

__all__ = [
    "OPENAPI",
    "OPENAPI_PATH",
    "OPERATIONS",
    "ApiDescription",
    "Operation",
    "Param",
    "build_spec",
    "routes",
]

OPENAPI_PATH = "/promptrun/v1/openapi.json"

_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
_REASONS = {
    200: "OK",
    201: "Created",
    400: "The body, a query parameter or a path parameter is not what the endpoint takes",
    401: "A missing, unknown or revoked API key",
    403: "A member key asked for what only an admin key of the workspace may do",
    404: "Something the workspace does not have",
    409: "The request conflicts with the state of what it names",
    413: "The body is over the server's size limit (--max-body-bytes; --max-record-bytes on "
    "the logging endpoints)",
    415: "The body's Content-Type or Content-Encoding is not one the endpoint takes",
    422: "The template cannot be rendered with the input variables given",
    429: "Too much from this workspace at once: retry after Retry-After seconds",
    503: "The server is too busy: retry after Retry-After seconds",
}
_PATH_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """A query, path or header parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    where: Literal["query", "path", "header"] = "query"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One endpoint: how to call it and what it answers.

    ``path`` is in OpenAPI form (``/requests/{ref}``); its ``{...}`` parts are string path
    parameters unless ``params`` describes them. ``request`` is the type the body decodes
    to, ``response`` the type of the success answer. ``errors`` are the 4xx statuses beyond
    those that follow from the rest (401 with ``auth``; 400 and 413 with a ``request``; 400
    with parameters). ``error_schema`` replaces the usual error body (``ErrorBody``) and
    ``other_content`` adds media types (and their schemas) that the request, the answer and
    the errors may also come in.
    """

    method: str
    path: str
    summary: str
    tag: str
    response: Any
    success: int = 200
    request: Any = None
    request_required: bool = True
    auth: bool = True
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""
    error_schema: Any = None
    other_content: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Other success statuses, each with what it means; the answer has the same shape.
    also: tuple[tuple[int, str], ...] = ()

    def statuses(self) -> list[int]:
        found = set(self.errors)
        if self.auth:
            found.add(401)
        if self.request is not None:
            found |= {400, 413}
        if self.params or _PATH_PARAM.search(self.path):
            found.add(400)
        return sorted(found)

    def operation_id(self) -> str:
        words = re.sub(r"[^A-Za-z0-9]+", "_", f"{self.method} {self.path}").strip("_")
        return words.lower()


def _parameters(op: Operation) -> list[dict[str, Any]]:
    given = {p.name: p for p in op.params}
    out: list[dict[str, Any]] = []
    for name in _PATH_PARAM.findall(op.path):
        param = given.pop(name, Param(name=name, schema={"type": "string"}, where="path"))
        out.append(
            {"name": name, "in": "path", "required": True, "schema": param.schema}
            | ({"description": param.description} if param.description else {})
        )
    for param in given.values():
        out.append(
            {"name": param.name, "in": param.where, "required": False, "schema": param.schema}
            | ({"description": param.description} if param.description else {})
        )
    return out


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def build_spec(operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``operations``."""
    ops = sorted(operations, key=lambda o: (o.path, o.method))
    types: list[Any] = [ErrorBody]
    for op in ops:
        types.append(op.response)
        if op.request is not None:
            types.append(op.request)
        if op.error_schema is not None:
            types.append(op.error_schema)
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    by_type = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        error = by_type[op.error_schema or ErrorBody]
        other = {kind: {"schema": schema} for kind, schema in op.other_content.items()}
        entry: dict[str, Any] = {
            "operationId": op.operation_id(),
            "summary": op.summary,
            "tags": [op.tag],
            "security": _SECURITY if op.auth else [],
            "responses": {
                str(op.success): {
                    "description": _REASONS.get(op.success, "OK"),
                    "content": _json_content(by_type[op.response]) | other,
                },
                **{
                    str(status): {
                        "description": meaning,
                        "content": _json_content(by_type[op.response]),
                    }
                    for status, meaning in op.also
                },
                **{
                    str(status): {
                        "description": _REASONS.get(status, "An error"),
                        "content": _json_content(error) | other,
                    }
                    for status in op.statuses()
                },
            },
        }
        if op.description:
            entry["description"] = op.description
        parameters = _parameters(op)
        if parameters:
            entry["parameters"] = parameters
        if op.request is not None:
            entry["requestBody"] = {
                "required": op.request_required,
                "content": _json_content(by_type[op.request]) | other,
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "promptrun server",
            "version": __version__,
            "description": (
                "The PromptLayer-compatible REST API of `promptrun serve`, and promptrun's "
                "own endpoints under /promptrun/v1. Errors are JSON "
                '`{"success": false, "message": ...}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
                "BearerKey": {"type": "http", "scheme": "bearer"},
            },
        },
    }


class ApiDescription:
    """The operations an app serves, and their document, built once on first request."""

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self.operations = list(operations)
        self._encoded: bytes | None = None

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = msgspec.json.encode(build_spec(self.operations))
        return self._encoded


OPENAPI = web.AppKey("promptrun_openapi", ApiDescription)

routes = web.RouteTableDef()


@routes.get(OPENAPI_PATH)
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI].encoded(), content_type="application/json")


OPERATIONS = [
    Operation(
        method="GET",
        path=OPENAPI_PATH,
        summary="This document",
        tag="promptrun",
        response=dict[str, Any],
        auth=False,
    )
]
