"""The one HTTP edge to the PromptLayer API: a pooled aiohttp session, errors mapped once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
    error_for_status,
    unexpected_answer,
)
from promptrun._retry import CALLER_POLICY, RetryPolicy, call_with_retries
from promptrun._version import __version__

if TYPE_CHECKING:
    import aiohttp

__all__ = ["ApiTransport", "Shape", "decode", "encode", "segment"]

#: What a success answer must be: its description ("a prompt template") and a test of it.
Shape = tuple[str, Callable[[Any], bool]]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
encode = _encoder.encode
decode = _decoder.decode

_USER_AGENT = f"promptrun/{__version__}"


def segment(name: str) -> str:
    """``name`` as one URL path segment: every reserved character percent-encoded (``/``,
    ``{``, ``%``, spaces, ...; UTF-8 for the rest), and a name made of dots (``.``, ``..``)
    as ``%2E``s, which ``request`` sends as they are instead of resolving them away."""
    quoted = quote(name, safe="")
    return "%2E" * len(quoted) if quoted and not quoted.strip(".") else quoted


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare from APIs; fall back to our own backoff


class ApiTransport:
    """Sends requests to one PromptLayer-compatible server with one API key.

    ``request`` returns the decoded JSON body for an expected status and raises the mapped
    :mod:`promptrun._errors` exception otherwise. The session is created in the runtime's
    event loop and closed by it.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._providers: aiohttp.ClientSession | None = None

    @property
    def provider_session(self) -> aiohttp.ClientSession | None:
        """A session on the same connection pool without this API's headers (its key, its
        user agent): what native provider transports send on (None when closed)."""
        return self._providers

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The pooled session (None before ``open`` and after ``close``), e.g. for websockets."""
        return self._session

    async def open(self, *, resolver: Any = None) -> None:
        """Create the session in the running loop (``resolver``: aiohttp's, by default)."""
        # aiohttp costs ~135 ms to import: paid when a client starts, not at `import promptrun`.
        import aiohttp

        from promptrun.pipeline.providers._session import open_provider_session, pooled_connector

        self._aiohttp = aiohttp
        self._timeout = aiohttp.ClientTimeout(total=self.timeout, connect=min(self.timeout, 10.0))
        connector = pooled_connector(resolver)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={
                "X-API-KEY": self.api_key,
                "User-Agent": _USER_AGENT,
                "Content-Type": "application/json",
            },
            skip_auto_headers=("Content-Type",),
        )
        self._providers = open_provider_session(connector)

    async def close(self) -> None:
        if self._providers is not None:
            await self._providers.close()
            self._providers = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        context: str,
        expect: tuple[int, ...] = (200,),
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        shape: Shape | None = None,
    ) -> Any:
        """One request; ``body`` is JSON-encoded here (bytes are sent as they are);
        ``headers`` are added to the session's.

        An expected status whose body is not JSON (or does not pass ``shape``) raises
        :class:`~promptrun._errors.PromptLayerUnexpectedAnswerError`: it did not come from
        the API (a wrong base URL, a proxy's page)."""
        session = self._session
        if session is None:
            raise PromptLayerAPIConnectionError(f"{context}: the client is closed")
        data = body if isinstance(body, bytes) or body is None else encode(body)
        kwargs: dict[str, Any] = {}
        aiohttp = self._aiohttp
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        url: Any = self.base_url + path
        if "%" in path:
            # Already percent-encoded (``segment``): sent as it is, since yarl would decode
            # ``%2E%2E`` and drop the segment with the one before it.
            import yarl  # already imported by aiohttp

            url = yarl.URL(url, encoded=True)
        try:
            async with session.request(
                method, url, data=data, params=params, headers=headers, **kwargs
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers) if status >= 400 else None
                content_type = resp.headers.get("Content-Type", "")
                location = resp.headers.get("Location")
        except TimeoutError as exc:
            seconds = self.timeout if timeout is None else timeout
            raise PromptLayerAPITimeoutError(
                f"{context}: no answer from {self.base_url} within {seconds:g} s; if the "
                "server is just slow, give it longer with http_timeout=... (or "
                "PROMPTLAYER_HTTP_TIMEOUT)"
            ) from exc
        except aiohttp.ClientError as exc:
            raise PromptLayerAPIConnectionError(
                f"{context}: could not reach {self.base_url} ({exc.__class__.__name__}: {exc}); "
                "is the server running there? base_url (or PROMPTLAYER_BASE_URL) names it; "
                "`promptrun serve` starts a local one"
            ) from exc
        if status not in expect and 200 <= status < 400:
            # A success the API does not give here (202, 204) or a redirect aiohttp did not
            # follow: a proxy or another server answered, not the API refusing the request.
            raise unexpected_answer(
                context, self.base_url + path, status, content_type, raw, None, location=location
            )
        try:
            payload: Any = decode(raw) if raw else None
        except msgspec.DecodeError:
            if status in expect:
                raise unexpected_answer(
                    context, self.base_url + path, status, content_type, raw, None
                ) from None
            payload = raw.decode("utf-8", "replace")
        if status not in expect:
            raise error_for_status(status, context, payload, retry_after=retry_after)
        if shape is not None and not shape[1](payload):
            raise unexpected_answer(
                context, self.base_url + path, status, content_type, raw, shape[0]
            )
        return payload

    async def call(
        self,
        method: str,
        path: str,
        *,
        context: str,
        policy: RetryPolicy = CALLER_POLICY,
        **kwargs: Any,
    ) -> Any:
        """``request`` under a retry policy (the spec's for caller-facing calls, by default)."""

        async def once() -> Any:
            return await self.request(method, path, context=context, **kwargs)

        return await call_with_retries(policy, context, once)
