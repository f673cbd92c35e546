"""Dashboard sessions and sign-in attempt limits, kept in the database.

Every server process on the database sees the same sessions (no sticky sessions behind a
load balancer) and the same failure counts (an attacker gains nothing by spreading guesses
over processes). A session is stored under the SHA-256 of its cookie, and is live while its
key is: revoking the key deletes its sessions, and reading one checks the key too.
"""

from __future__ import annotations

from collections.abc import Sequence

from promptrun.server.store.base import DashboardSession, SigninPolicy
from promptrun.server.store.queries._sql import Op, execute, fetch, fetchrow
from promptrun.server.store.queries.dialect import Dialect

__all__ = [
    "create_session",
    "end_session",
    "get_session",
    "signin_failed",
    "signin_wait",
    "touch_session",
]


def create_session(
    d: Dialect,
    id_hash: str,
    key_id: int,
    csrf_token: str,
    *,
    now: float,
    expires_at: float,
    idle: float,
) -> Op[None]:
    yield from execute(
        "DELETE FROM dashboard_sessions WHERE expires_at <= $1 OR seen_at <= $2", now, now - idle
    )
    yield from execute(
        "INSERT INTO dashboard_sessions (id_hash, key_id, csrf_token, created_at, seen_at, "
        "expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
        id_hash,
        key_id,
        csrf_token,
        now,
        expires_at,
    )


def get_session(
    d: Dialect, id_hash: str, *, now: float, idle: float
) -> Op[DashboardSession | None]:
    row = yield from fetchrow(
        "SELECT s.key_id, k.workspace_id, w.name, k.role, s.csrf_token, s.seen_at, s.expires_at "
        "FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id "
        "JOIN workspaces w ON w.id = k.workspace_id "
        "WHERE s.id_hash = $1 AND k.revoked_at IS NULL AND s.expires_at > $2 AND s.seen_at > $3",
        id_hash,
        now,
        now - idle,
    )
    if row is None:
        return None
    key_id, workspace, name, role, csrf, seen, expires = row
    return DashboardSession(
        key_id=int(key_id),
        workspace=int(workspace),
        workspace_name=str(name),
        role="admin" if role == "admin" else "member",
        csrf_token=str(csrf),
        seen_at=float(seen),
        expires_at=float(expires),
    )


def touch_session(d: Dialect, id_hash: str, now: float) -> Op[None]:
    yield from execute(
        "UPDATE dashboard_sessions SET seen_at = $1 WHERE id_hash = $2", now, id_hash
    )


def end_session(d: Dialect, id_hash: str) -> Op[None]:
    yield from execute("DELETE FROM dashboard_sessions WHERE id_hash = $1", id_hash)


def signin_wait(d: Dialect, subjects: Sequence[str], now: float) -> Op[float]:
    usable = [s for s in subjects if d.text_ok(s)]
    if not usable:
        return 0.0
    rows = yield from fetch(
        f"SELECT blocked_until FROM signin_failures WHERE subject {d.any_of('$1', 'text')}",
        d.array(usable),
    )
    return max([0.0, *(float(until) - now for (until,) in rows)])


def _wait_after(failures: int, policy: SigninPolicy) -> float:
    over = failures - policy.free
    return (
        0.0 if over < 0 else float(min(policy.max_wait, policy.first_wait * 2.0 ** min(over, 30)))
    )


def signin_failed(
    d: Dialect, subjects: Sequence[str], policy: SigninPolicy, now: float
) -> Op[float]:
    """Sorted, so processes counting the same subjects at once lock them in one order."""
    yield from execute("DELETE FROM signin_failures WHERE last_failure < $1", now - policy.window)
    wait = 0.0
    for subject in sorted({s for s in subjects if d.text_ok(s)}):
        row = yield from fetchrow(
            "INSERT INTO signin_failures (subject, failures, last_failure, blocked_until) "
            "VALUES ($1, 1, $2, $2) ON CONFLICT (subject) DO UPDATE SET "
            "failures = signin_failures.failures + 1, last_failure = $2 RETURNING failures",
            subject,
            now,
        )
        assert row is not None
        blocked = _wait_after(int(row[0]), policy)
        yield from execute(
            "UPDATE signin_failures SET blocked_until = $1 WHERE subject = $2",
            now + blocked,
            subject,
        )
        wait = max(wait, blocked)
    return wait
