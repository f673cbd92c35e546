"""The HTTP session tool nodes call through: checked addresses, no credentials, bounded bodies.

:class:`CheckedResolver` is the session's DNS: it asks a base resolver once per connection,
judges every address with the server's :class:`~promptrun.workflows._destinations.ToolPolicy`
and hands aiohttp exactly the addresses it judged, so the connection goes where the check
looked (no second lookup for DNS rebinding to answer differently). aiohttp keeps the name for
the ``Host`` header and TLS (SNI and certificate checks). The base resolver is injectable (a
stub in tests, a company resolver in production); by default it is the system's
``getaddrinfo`` in a thread.

:func:`open_tool_session` makes the session both hosts use: no cookie jar, no proxy or
``.netrc`` from the environment, no default headers (no PromptLayer key), ``Accept-Encoding:
identity``, and no automatic decompression (a compressed answer is inflated here, to at most
the response limit, so a small gzip bomb cannot grow into gigabytes).
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from typing import TYPE_CHECKING

from promptrun.workflows._destinations import ToolPolicy

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["inflate", "open_tool_session"]


def _checked_resolver(policy: ToolPolicy, base: AbstractResolver | None) -> AbstractResolver:
    from aiohttp.abc import AbstractResolver
    from aiohttp.resolver import ThreadedResolver

    class CheckedResolver(AbstractResolver):
        """Resolves once, refuses the host if any address is not allowed, returns the rest."""

        def __init__(self) -> None:
            self._base = base or ThreadedResolver()

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            answers = await self._base.resolve(host, port, family)
            name = host.lower().rstrip(".")
            for answer in answers:
                address = ipaddress.ip_address(answer["host"].split("%", 1)[0])
                policy.check_address(name, port, address)
            if not answers:
                raise OSError(f"{host} has no address")
            return answers

        async def close(self) -> None:
            await self._base.close()

    return CheckedResolver()


def open_tool_session(
    policy: ToolPolicy | None = None, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """A session for tool calls; with ``policy``, every connection's addresses are checked."""
    import aiohttp

    connector = aiohttp.TCPConnector(
        resolver=None if policy is None else _checked_resolver(policy, resolver),
        use_dns_cache=False,  # every new connection is resolved and checked
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=False,
        headers={"Accept-Encoding": "identity"},
    )


def inflate(raw: bytes, encoding: str, limit: int) -> bytes | None:
    """``raw`` decoded from gzip or deflate, at most ``limit + 1`` bytes; None if unknown."""
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip", "deflate"):
        # wbits 47: a gzip or zlib header, found automatically
        return zlib.decompressobj(47).decompress(raw, limit + 1)
    return None
