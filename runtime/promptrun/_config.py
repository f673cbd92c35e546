"""Client settings: the constructor's arguments, completed from the environment."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from promptrun._errors import PromptLayerValidationError
from promptrun._validate import is_http_url

__all__ = ["DEFAULT_BASE_URL", "ClientConfig", "spool_folder"]

DEFAULT_BASE_URL = "https://api.promptlayer.com"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise PromptLayerValidationError(
            f"{name}={raw!r} is not a number of seconds; unset it or give e.g. {name}=10"
        ) from None


def spool_folder(base_url: str, api_key: str, root: str | os.PathLike[str] | None) -> Path:
    """Where records that could not be shipped wait: one folder per server and key, under
    ``root`` (``spool_dir=``), ``PROMPTRUN_SPOOL_DIR``, or the user's cache folder.

    A record only ever ships to the server and key it was made for: two clients sharing a
    ``spool_dir`` for different servers or keys (staging and production, two tenants) never
    replay each other's records.
    """
    if root is None:
        root = os.environ.get("PROMPTRUN_SPOOL_DIR") or None
    if root is not None:
        base = Path(root)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(cache) / "promptrun" / "spool"
    # The key is hashed so the folder name does not reveal it.
    tag = hashlib.sha256(f"{server_key(base_url)}\0{api_key}".encode()).hexdigest()[:16]
    return base / tag


_DEFAULT_PORTS = {"http": 80, "https": 443}


def server_key(base_url: str) -> str:
    """``base_url`` spelled one way for the same server: scheme and host lower-case, the
    default port dropped, no trailing slash (``HTTP://Host:80/`` is ``http://host``).

    Host names are not resolved: ``localhost`` and ``127.0.0.1`` stay different servers."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Everything a client needs, resolved once at construction."""

    api_key: str
    base_url: str
    throw_on_error: bool = True
    cache_ttl_seconds: float = 0.0
    cache_refresh: Literal["wait", "background"] = "wait"
    cache_max_stale_seconds: float | None = None
    template_cache_size: int = 1000
    http_timeout: float = 10.0
    inline_logging: bool = False
    log_channel_size: int = 10_000
    log_batch_size: int = 500
    log_batch_linger: float = 0.05
    log_batch_linger_max: float = 0.5  # the adaptive linger's bound (batching servers only)
    spool_dir: Path = field(default_factory=Path)
    spool_max_bytes: int = 256 * 1024 * 1024
    shutdown_timeout: float = 5.0
    provider_concurrency: int = 100
    provider_base_urls: dict[str, str] = field(default_factory=dict)
    strict_variables: bool = False
    native_transport: bool = True

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        throw_on_error: bool,
        cache_ttl_seconds: float,
        cache_refresh: Literal["wait", "background"] = "wait",
        cache_max_stale_seconds: float | None = None,
        http_timeout: float | None,
        inline_logging: bool,
        log_channel_size: int,
        spool_dir: str | os.PathLike[str] | None,
        spool_max_bytes: int,
        shutdown_timeout: float,
        provider_concurrency: int,
        provider_base_urls: dict[str, str] | None,
        strict_variables: bool = False,
        native_transport: bool = True,
    ) -> ClientConfig:
        key = api_key if api_key is not None else os.environ.get("PROMPTLAYER_API_KEY")
        if not key:
            raise PromptLayerValidationError(
                "PromptLayer API key not provided: pass api_key=... or set PROMPTLAYER_API_KEY "
                "(for a local server, `promptrun serve` prints one when it starts)"
            )
        url = base_url or os.environ.get("PROMPTLAYER_BASE_URL") or DEFAULT_BASE_URL
        url = url.rstrip("/")
        if not is_http_url(url):
            raise PromptLayerValidationError(
                f"base_url {url!r} must start with http:// or https://"
            )
        if not (isinstance(cache_ttl_seconds, int | float) and cache_ttl_seconds >= 0):
            raise PromptLayerValidationError("cache_ttl_seconds must be 0 (no cache) or more")
        if cache_refresh != "wait" and cache_refresh != "background":
            raise PromptLayerValidationError(
                f"cache_refresh={cache_refresh!r}: use 'wait' (after the TTL the next caller "
                "waits for a fresh template) or 'background' (an expired template is served "
                "while one refresh runs)"
            )
        if cache_max_stale_seconds is not None and not (
            isinstance(cache_max_stale_seconds, int | float) and cache_max_stale_seconds >= 0
        ):
            raise PromptLayerValidationError(
                "cache_max_stale_seconds must be 0 or more (or None: one TTL)"
            )
        if log_channel_size < 1:
            raise PromptLayerValidationError("log_channel_size must be at least 1")
        if spool_max_bytes < 1024:
            raise PromptLayerValidationError("spool_max_bytes must be at least 1024")
        if provider_concurrency < 1:
            raise PromptLayerValidationError("provider_concurrency must be at least 1")
        timeout = (
            http_timeout
            if http_timeout is not None
            else _env_float("PROMPTLAYER_HTTP_TIMEOUT", 10.0)
        )
        if timeout <= 0:
            raise PromptLayerValidationError("http_timeout must be more than 0 seconds")
        spool = spool_folder(url, key, spool_dir)
        return cls(
            api_key=key,
            base_url=url,
            throw_on_error=throw_on_error,
            cache_ttl_seconds=float(cache_ttl_seconds),
            cache_refresh=cache_refresh,
            cache_max_stale_seconds=cache_max_stale_seconds,
            http_timeout=timeout,
            inline_logging=inline_logging,
            log_channel_size=log_channel_size,
            spool_dir=spool,
            spool_max_bytes=spool_max_bytes,
            shutdown_timeout=shutdown_timeout,
            provider_concurrency=provider_concurrency,
            provider_base_urls=dict(provider_base_urls or {}),
            strict_variables=bool(strict_variables),
            native_transport=bool(native_transport),
        )
