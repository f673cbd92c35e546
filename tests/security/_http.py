"""A small synchronous HTTP client for tests that drive a server from hypothesis or loops.

Raw bytes in, status, content type and decoded JSON (or None) out; one connection per call,
so a server that closes a connection after an error cannot affect the next call.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Answer", "Http"]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def is_json_error(self) -> bool:
        """A ``{"success": false, "message": "..."}`` body with a non-empty message."""
        if self.content_type != "application/json":
            return False
        try:
            body = self.json()
        except ValueError:
            return False
        return (
            isinstance(body, dict)
            and body.get("success") is False
            and isinstance(body.get("message"), str)
            and bool(body["message"].strip())
        )


class Http:
    """Calls one server; ``key`` goes in ``X-API-KEY`` unless the call says otherwise."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: bytes | Any = None,
        *,
        key: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """``body`` is sent as is when bytes, else as JSON; ``key=None`` sends no key."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        key = self.key if key == "" else key
        if key is not None:
            sent["X-API-KEY"] = key
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
            return Answer(response.status, content_type, raw)
        finally:
            conn.close()

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        answer = self.call(method, path, body, **kwargs)
        assert answer.status < 300, (method, path, answer.status, answer.raw[:500])
        return answer.json()
