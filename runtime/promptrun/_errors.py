"""The exception tree.

Every error promptrun raises on purpose derives from :class:`PromptLayerError`; the names are
the PromptLayer SDK's, so ``except PromptLayerNotFoundError`` written for the peer SDK keeps
working::

    PromptLayerError
    ├── PromptLayerAPIError                  the PromptLayer API answered with an error status
    │   ├── PromptLayerBadRequestError            400
    │   ├── PromptLayerAuthenticationError        401
    │   ├── PromptLayerPermissionDeniedError      403
    │   ├── PromptLayerNotFoundError              404 (and a template that does not exist)
    │   ├── PromptLayerConflictError              409
    │   ├── PromptLayerUnprocessableEntityError   422
    │   ├── PromptLayerRateLimitError             429
    │   ├── PromptLayerInternalServerError        5xx
    │   ├── PromptLayerAPIStatusError             any other non-success status
    │   └── PromptLayerUnexpectedAnswerError      a success status with a body that is not
    │                                             the API's (HTML from a wrong base_url, ...)
    ├── PromptLayerAPIConnectionError        could not reach the PromptLayer API
    ├── PromptLayerAPITimeoutError           the PromptLayer API did not answer in time
    └── PromptLayerValidationError           bad arguments, found before any network call

Errors raised by an LLM provider's SDK (``openai.RateLimitError`` and the like) are passed
through unchanged, as the peer SDK does.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SERVER_BUSY",
    "TRANSIENT",
    "TRANSPORT_FAILED",
    "PromptLayerAPIConnectionError",
    "PromptLayerAPIError",
    "PromptLayerAPIStatusError",
    "PromptLayerAPITimeoutError",
    "PromptLayerAuthenticationError",
    "PromptLayerBadRequestError",
    "PromptLayerConflictError",
    "PromptLayerError",
    "PromptLayerInternalServerError",
    "PromptLayerNotFoundError",
    "PromptLayerPermissionDeniedError",
    "PromptLayerRateLimitError",
    "PromptLayerUnexpectedAnswerError",
    "PromptLayerUnprocessableEntityError",
    "PromptLayerValidationError",
    "describe",
    "error_for_status",
    "unexpected_answer",
]


class PromptLayerError(Exception):
    """Root of every error promptrun raises on purpose.

    ``message`` is the text, ``response`` the HTTP status (an ``int``) when there was one, and
    ``body`` the decoded error body (or its text) when there was one.
    """

    def __init__(self, message: str, response: Any = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.body = body

    def __str__(self) -> str:
        return self.message


class PromptLayerAPIError(PromptLayerError):
    """The PromptLayer API answered with an error status."""

    status_code: int | None = None

    def __init__(
        self,
        message: str,
        response: Any = None,
        body: Any = None,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, response, body)
        if status_code is not None:
            self.status_code = status_code
        self.retry_after = retry_after


class PromptLayerBadRequestError(PromptLayerAPIError):
    status_code = 400


class PromptLayerAuthenticationError(PromptLayerAPIError):
    status_code = 401


class PromptLayerPermissionDeniedError(PromptLayerAPIError):
    status_code = 403


class PromptLayerNotFoundError(PromptLayerAPIError):
    status_code = 404


class PromptLayerConflictError(PromptLayerAPIError):
    status_code = 409


class PromptLayerUnprocessableEntityError(PromptLayerAPIError):
    status_code = 422


class PromptLayerRateLimitError(PromptLayerAPIError):
    status_code = 429


class PromptLayerInternalServerError(PromptLayerAPIError):
    status_code = 500


class PromptLayerAPIStatusError(PromptLayerAPIError):
    """A non-success status with no class of its own."""


class PromptLayerUnexpectedAnswerError(PromptLayerAPIError):
    """The server answered with a success status, but not with what the PromptLayer API sends
    there: HTML from a wrong ``base_url``, a proxy's or captive portal's page, another shape.
    Nothing says the call was carried out."""


class PromptLayerAPIConnectionError(PromptLayerError):
    """The PromptLayer API could not be reached (refused, reset, DNS, TLS)."""


class PromptLayerAPITimeoutError(PromptLayerError):
    """The PromptLayer API did not answer within the client's timeout."""


class PromptLayerValidationError(PromptLayerError, ValueError):
    """The arguments were wrong; nothing was sent.

    Also a ``ValueError``, so code that caught the peer SDK's ``ValueError`` for a missing API
    key or a malformed template keeps working.
    """


_BY_STATUS: dict[int, type[PromptLayerAPIError]] = {
    400: PromptLayerBadRequestError,
    401: PromptLayerAuthenticationError,
    403: PromptLayerPermissionDeniedError,
    404: PromptLayerNotFoundError,
    409: PromptLayerConflictError,
    422: PromptLayerUnprocessableEntityError,
    429: PromptLayerRateLimitError,
}


SERVER_BUSY: tuple[type[PromptLayerError], ...] = (
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
)
"""The server answered, but could not serve the call now (5xx, 429): worth asking again."""
TRANSPORT_FAILED: tuple[type[PromptLayerError], ...] = (
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
)
"""The server could not be reached, or did not answer in time."""
TRANSIENT = SERVER_BUSY + TRANSPORT_FAILED
"""Failures that say nothing about the call itself: it may succeed later as it is."""


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else repr(value)
        return repr(body)
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")[:1000]
    return str(body)[:1000]


def error_for_status(
    status: int, context: str, body: Any, *, retry_after: float | None = None
) -> PromptLayerAPIError:
    """The exception for an error status: ``"<context>: <detail from the body>"``."""
    if status >= 500:
        cls: type[PromptLayerAPIError] = PromptLayerInternalServerError
    else:
        cls = _BY_STATUS.get(status, PromptLayerAPIStatusError)
    return cls(
        f"{context}: {_detail(body)} (HTTP {status})",
        status,
        body,
        status_code=status,
        retry_after=retry_after,
    )


def _is_json(raw: bytes) -> bool:
    import msgspec  # already imported by the transport that got the answer

    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return True


def unexpected_answer(
    context: str,
    url: str,
    status: int,
    content_type: str,
    raw: bytes,
    wanted: str | None,
    *,
    location: str | None = None,
) -> PromptLayerUnexpectedAnswerError:
    """The error for a success status (or a redirect) whose answer is not what the API sends:
    it names the URL, the status, what came back (a snippet) and what to check."""
    kind = content_type.split(";", 1)[0].strip().lower() or "no content type"
    if 300 <= status < 400:
        what = f"with a redirect to {location!r:.200}" if location else "with a redirect"
    elif not raw.strip():
        what = "with an empty body"
    elif "html" in kind:
        what = "HTML"
    elif not _is_json(raw):
        what = f"a body that is not JSON ({kind})"
    else:
        what = f"JSON that is not {wanted or 'what the API answers here'}"
    snippet = " ".join(raw[:120].decode("utf-8", "replace").split()) or "(empty)"
    return PromptLayerUnexpectedAnswerError(
        f"{context}: the server at {url} answered {what} (HTTP {status}, {kind}: {snippet!r}), "
        "not the PromptLayer API's answer: is base_url (or PROMPTLAYER_BASE_URL) the API's "
        "root, such as http://127.0.0.1:8765 for `promptrun serve`? A proxy or captive portal "
        "in between can answer like this too",
        status,
        raw.decode("utf-8", "replace")[:1000],
        status_code=status,
    )


def describe(context: str, exc: BaseException) -> str:
    """``"<context>: <what went wrong>"``, saying the context once even when the error's own
    text already starts with it (ours do)."""
    text = str(exc) or type(exc).__name__
    return text if text.startswith(context) else f"{context}: {text}"
