"""PostgreSQL URLs as ``--db`` takes them (no asyncpg import: the CLI uses this at start)."""

from __future__ import annotations

import re

__all__ = ["is_postgres_url", "redact"]

_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")


def is_postgres_url(text: str) -> bool:
    """Whether ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return text.startswith(_SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return _PASSWORD.sub(r"\1:***@", url)
