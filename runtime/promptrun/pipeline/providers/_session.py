"""The aiohttp session native provider transports send on (``ProviderClients(session=...)``).

A client's runtime opens it on the connection pool it shares with the PromptLayer API; the
server (workflow prompt nodes, the playground) opens one of its own at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

__all__ = ["open_provider_session", "pooled_connector"]


def pooled_connector(resolver: Any = None) -> aiohttp.TCPConnector:
    """A connection pool with no total limit: provider calls are bounded per provider by
    their own limiter, and must not starve a client's log shipping of connections."""
    import aiohttp  # ~135 ms to import: paid when a runtime or the server starts

    return aiohttp.TCPConnector(
        limit=0, limit_per_host=200, keepalive_timeout=30, resolver=resolver
    )


def open_provider_session(
    connector: aiohttp.BaseConnector | None = None, *, cookies: bool = True
) -> aiohttp.ClientSession:
    """A session with no default headers (no PromptLayer key, no user agent: each transport
    sends its provider's) and no proxy from the environment, as a client's native transports
    have always used. On ``connector`` (left open when the session closes), else on a pool of
    its own. ``cookies=False``: no cookie jar, for a server whose runs belong to different
    workspaces."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=connector or pooled_connector(),
        connector_owner=connector is None,
        cookie_jar=None if cookies else aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Content-Type"),
    )
