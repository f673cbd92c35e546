"""The server's configuration and the typed keys its application state lives under."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from promptrun.server._faults import FaultInjector
    from promptrun.server.auth import KeyRing
    from promptrun.server.store.base import Store

__all__ = ["CONFIG", "FAULTS", "KEYRING", "STORE", "ServerConfig"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything ``promptrun serve`` can be told.

    ``api_keys`` entries are ``"KEY"`` (workspace ``default``) or ``"WORKSPACE:KEY"``. With
    none given and none stored yet, the server makes one at start when ``generate_key`` is
    true (``create_app``'s caller can read it from the key ring). ``database_url``
    (``postgresql://...``) selects the PostgreSQL store instead of the SQLite file at
    ``db_path``; ``db_connections`` caps that store's connection pool.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    db_path: Path = Path("promptrun.db")
    database_url: str | None = None
    db_connections: int = 10
    api_keys: tuple[str, ...] = ()
    generate_key: bool = True
    sandbox: bool = True
    sandbox_latency_ms: float = 0.0
    sandbox_chunks: int = 8
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    fault_injection: bool = False
    # Origins that server-side workflow tool nodes may call ("*": any public address).
    tool_urls: tuple[str, ...] = ()
    # Code nodes: the bwrap binary (None: $PROMPTRUN_BWRAP, else on the PATH); running them
    # without the sandbox; slots at once (None: two per CPU) and per workspace (None: half);
    # the longest timeout a node may ask for.
    bwrap: str | None = None
    unsafe_code_nodes: bool = False
    code_slots: int | None = None
    code_workspace_slots: int | None = None
    code_max_timeout: float = 60.0
    # False leaves out the audit hook inside the sandbox (the kernel's boundary alone): the
    # red-team tests run both ways. No command-line flag sets it.
    code_audit_hook: bool = True
    write_batch: int = 512
    read_threads: int = 2


CONFIG = web.AppKey("promptrun_config", ServerConfig)
STORE: web.AppKey[Store] = web.AppKey("promptrun_store")
KEYRING: web.AppKey[KeyRing] = web.AppKey("promptrun_keyring")
FAULTS: web.AppKey[FaultInjector] = web.AppKey("promptrun_faults")
