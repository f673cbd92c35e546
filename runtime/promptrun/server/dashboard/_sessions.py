"""Dashboard sessions: a random id in a cookie, mapped in memory to a workspace and a CSRF token.

The API key itself is never kept: signing in resolves it to its workspace once. Sessions end
at sign-out, after ``ttl`` seconds, or when the server restarts (sign in again).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COOKIE", "LOGIN_COOKIE", "Session", "SessionStore", "tokens_match"]

COOKIE = "promptrun_session"
# Carries the sign-in form's token before there is a session (double submit).
LOGIN_COOKIE = "promptrun_signin"
DEFAULT_TTL = 12 * 3600.0
_MAX_SESSIONS = 10_000


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing token never matches."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(slots=True)
class Session:
    id: str
    workspace: int
    workspace_name: str
    csrf_token: str
    expires_at: float


class SessionStore:
    """Sessions by id, with a fixed lifetime from sign-in."""

    def __init__(
        self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    @property
    def ttl(self) -> float:
        """Seconds a session lasts from sign-in."""
        return self._ttl

    def create(self, workspace: int, workspace_name: str) -> Session:
        """A new session for the workspace; the oldest ones go when the store is full."""
        now = self._clock()
        if len(self._sessions) >= _MAX_SESSIONS:
            self._prune(now)
        while len(self._sessions) >= _MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session = Session(
            id=secrets.token_urlsafe(32),
            workspace=workspace,
            workspace_name=workspace_name,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._ttl,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with that id, or None (unknown, expired or ended)."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _prune(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
