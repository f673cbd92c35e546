"""Serve ``//path`` as ``/path``, for clients whose base URL ends in a slash.

The peer SDK joins its base URL and an endpoint path without normalising either, so
``PROMPTLAYER_BASE_URL=http://host:8000/`` asks for ``//prompt-templates/...``. A redirect
would not do: the peer's async client follows none, and its sync publish takes any answer
but a 400 as success. So a path that matches no route is resolved again with repeated
slashes merged, and served if that matches.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

__all__ = ["merge_slashes_middleware"]

_REPEATED = re.compile(r"//+")


@web.middleware
async def merge_slashes_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost middleware: re-route an unmatched path that has ``//`` in it."""
    raw_path = request.rel_url.raw_path
    if request.match_info.http_exception is None or "//" not in raw_path:
        return await handler(request)
    url = URL.build(
        path=_REPEATED.sub("/", raw_path),
        query_string=request.rel_url.raw_query_string,
        encoded=True,
    )
    merged = request.clone(rel_url=url)
    match = await request.app.router.resolve(merged)
    if match.http_exception is not None:
        return await handler(request)
    match.add_app(request.app)
    match.freeze()
    # As aiohttp's own normalize_path_middleware does: there is no public setter.
    merged._match_info = match
    return await match.handler(merged)
