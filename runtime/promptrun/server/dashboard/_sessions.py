"""Dashboard sessions: a random id in a cookie, kept in the server's store.

The API key itself is never kept: signing in resolves it to its key id, and the session
follows that key (its workspace, its role, its revocation: revoking the key ends its
sessions). The store holds the SHA-256 of the cookie, not the cookie, and every server
process on the database reads the same sessions, so a load balancer needs no sticky
sessions. A session ends at sign-out, after ``idle`` seconds without a page, or ``lifetime``
seconds after sign-in, whichever comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from promptrun.server.store.base import KeyGrant, KeyRole, Store

__all__ = ["COOKIE", "LOGIN_COOKIE", "Session", "SessionStore", "tokens_match"]

COOKIE = "promptrun_session"
# Carries the sign-in form's token before there is a session (double submit).
LOGIN_COOKIE = "promptrun_signin"
DEFAULT_IDLE = 2 * 3600.0
DEFAULT_LIFETIME = 12 * 3600.0
_TOUCH_EVERY = 60.0  # a session's use is written at most this often
_MAX_ID = 256


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing token never matches."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(slots=True, kw_only=True)
class Session:
    id: str  # the cookie's value
    key_id: int
    workspace: int
    workspace_name: str
    role: KeyRole
    csrf_token: str
    expires_at: float


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in the server's store, with an idle limit and a lifetime from sign-in."""

    def __init__(
        self, store: Store, *, idle: float = DEFAULT_IDLE, lifetime: float = DEFAULT_LIFETIME
    ) -> None:
        self._store = store
        self.idle = idle
        self.lifetime = lifetime

    async def create(self, grant: KeyGrant, workspace_name: str) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            key_id=grant.key_id,
            workspace=grant.workspace,
            workspace_name=workspace_name,
            role=grant.role,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=time.time() + self.lifetime,
        )
        await self._store.create_session(
            _id_hash(session.id),
            grant.key_id,
            session.csrf_token,
            expires_at=session.expires_at,
            idle=self.idle,
        )
        return session

    async def get(self, session_id: str | None) -> Session | None:
        """The live session with that id, or None (unknown, expired, ended or revoked)."""
        if not session_id or len(session_id) > _MAX_ID:
            return None
        id_hash = _id_hash(session_id)
        stored = await self._store.get_session(id_hash, idle=self.idle)
        if stored is None:
            return None
        if time.time() - stored.seen_at >= _TOUCH_EVERY:
            await self._store.touch_session(id_hash)
        return Session(
            id=session_id,
            key_id=stored.key_id,
            workspace=stored.workspace,
            workspace_name=stored.workspace_name,
            role=stored.role,
            csrf_token=stored.csrf_token,
            expires_at=stored.expires_at,
        )

    async def end(self, session_id: str) -> None:
        await self._store.end_session(_id_hash(session_id))
