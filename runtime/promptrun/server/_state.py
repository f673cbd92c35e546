"""The server's configuration and the typed keys its application state lives under."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from promptrun.blueprint import RenderBudget
from promptrun.server._body_budget import DEFAULT_MAX_INFLIGHT_BODY_BYTES
from promptrun.server.store.base import SigninPolicy
from promptrun.workflows._code_sandbox import CodeNodeSettings

if TYPE_CHECKING:
    from promptrun.server.auth import KeyRing
    from promptrun.server.store.base import Store

__all__ = ["CONFIG", "KEYRING", "STORE", "ServerConfig", "render_budget"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# One log record (/track-request, /log-request, an ingest batch) carries a whole prompt and
# answer. A 1M-token prompt is about 4 MB of English text, and a peer SDK body escapes every
# non-ASCII character as \uXXXX (6 bytes), and images travel as base64: 32 MiB fits a
# long-context record with room, while a body is still bounded (it is held in memory).
DEFAULT_MAX_RECORD_BYTES = 32 * 1024 * 1024


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
    #: Where ``api_keys`` came from, as the start-up lines name it.
    key_source: str = "--api-key"
    generate_key: bool = True
    sandbox: bool = True
    sandbox_latency_ms: float = 0.0
    sandbox_chunks: int = 8
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: The body limit of the logging endpoints, whose bodies are whole prompts and answers.
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    #: Bytes of request bodies held at once across the server (0: no bound); see
    #: server/_body_budget.py.
    max_inflight_body_bytes: int = DEFAULT_MAX_INFLIGHT_BODY_BYTES
    fault_injection: bool = False
    # Origins that server-side workflow tool nodes may call ("*": any public address).
    tool_urls: tuple[str, ...] = ()
    # How code nodes run: sandboxed (by default), refused, or unsafe; their fair shares.
    code_nodes: CodeNodeSettings = field(default_factory=CodeNodeSettings)
    write_batch: int = 512
    read_threads: int = 2
    # Connections: see server/_connections.py.
    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    # Rendering templates for callers: see promptrun.blueprint.RenderBudget.
    render_timeout: float = 1.0
    render_max_chars: int = 16_000_000
    # OTLP spans received and not yet stored, at most (past it: 429/503 with Retry-After).
    max_pending_spans: int = 100_000
    # Seconds a workflow execution's lease lasts: how soon an execution whose process died
    # is marked failed (by another process, or this one restarted).
    execution_lease: float = 30.0
    # Prompt nodes and the playground call providers through the native transports (False:
    # through the provider SDKs, as `serve --no-native-transport`).
    native_transport: bool = True
    # Dashboard sign-in attempts per client address and per key tried.
    signin_policy: SigninPolicy = field(default_factory=SigninPolicy)


CONFIG = web.AppKey("promptrun_config", ServerConfig)
STORE: web.AppKey[Store] = web.AppKey("promptrun_store")
KEYRING: web.AppKey[KeyRing] = web.AppKey("promptrun_keyring")


def render_budget(config: ServerConfig) -> RenderBudget:
    """The budget of one rendering the server does for a caller."""
    return RenderBudget(seconds=config.render_timeout, max_chars=config.render_max_chars)
