"""API keys: which workspace a request acts in.

A key is accepted from the ``X-API-KEY`` header, ``Authorization: Bearer <key>``, or the
body's ``api_key`` (where the peer SDK puts it for several endpoints), in that order. Only a
SHA-256 of each key is stored; lookups are cached in memory.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import msgspec
from aiohttp import web

from promptrun.server._http import ApiError, decode_body
from promptrun.server.store.base import Store

__all__ = [
    "DEFAULT_WORKSPACE",
    "KeyRing",
    "authorized_body",
    "hash_key",
    "new_key",
    "parse_key_spec",
]

DEFAULT_WORKSPACE = "default"
_MAX_CACHED = 10_000


class _KeyedBody(Protocol):
    @property
    def api_key(self) -> str | None: ...


B = TypeVar("B", bound=_KeyedBody)


class _BodyKey(msgspec.Struct):
    """Only the key of a body, whatever else it holds (unknown fields are skipped)."""

    api_key: str | None = None


_BODY_KEY = msgspec.json.Decoder(_BodyKey)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key in the PromptLayer style: ``pl_`` and 48 hex digits."""
    return "pl_" + secrets.token_hex(24)


def parse_key_spec(spec: str) -> tuple[str, str]:
    """``"WORKSPACE:KEY"`` or ``"KEY"`` (workspace ``default``) as ``(workspace, key)``."""
    workspace, sep, key = spec.partition(":")
    if not sep:
        workspace, key = DEFAULT_WORKSPACE, spec
    workspace, key = workspace.strip(), key.strip()
    if not workspace or not key:
        raise ValueError(f"API key spec {spec!r} should be KEY or WORKSPACE:KEY, both non-empty")
    return workspace, key


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    workspace: str
    key: str


class KeyRing:
    """Resolves a request's key to its workspace id; registers configured keys at start."""

    def __init__(self, store: Store, specs: Iterable[str] = (), *, generate: bool = True) -> None:
        self._store = store
        self._keys = [parse_key_spec(spec) for spec in specs]
        self._generate = generate
        self._cache: dict[str, int] = {}
        self.generated: GeneratedKey | None = None

    async def start(self) -> None:
        """Store the configured keys; with none configured or stored, make one."""
        if not self._keys and self._generate and not await self._store.has_keys():
            self.generated = GeneratedKey(DEFAULT_WORKSPACE, new_key())
            self._keys = [(self.generated.workspace, self.generated.key)]
        if self._keys:
            await self._store.add_keys([(ws, hash_key(key)) for ws, key in self._keys])

    @staticmethod
    def key_of(request: web.Request, body_key: str | None = None) -> str | None:
        key = request.headers.get("X-API-KEY")
        if key:
            return key
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return body_key or None

    async def workspace(self, request: web.Request, body_key: str | None = None) -> int:
        """The workspace id for the request's key; a 401 when it is missing or unknown."""
        key = self.key_of(request, body_key)
        if key is None:
            raise ApiError(
                401,
                "missing API key: send it in the X-API-KEY header, as Authorization: Bearer "
                "<key>, or as api_key in the JSON body",
            )
        digest = hash_key(key)
        workspace = self._cache.get(digest)
        if workspace is None:
            workspace = await self._store.workspace_for_key(digest)
            if workspace is None:
                raise ApiError(
                    401,
                    "unknown API key: use a key this server was started with "
                    "(promptrun serve --api-key) or the one it generated",
                )
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = workspace
        return workspace

    async def knows(self, request: web.Request) -> bool:
        """Whether the request's headers carry a key of this server (a body key does not count)."""
        if self.key_of(request) is None:
            return False
        try:
            await self.workspace(request)
        except ApiError:
            return False
        return True

    async def workspace_if_known(self, request: web.Request) -> int | None:
        """The workspace of the request's key, from a header or a JSON body; None if unknown.

        For code that acts before the handler (fault injection): the body is read (and kept
        for the handler) only when no header names a key.
        """
        body_key = None
        if self.key_of(request) is None:
            # An unmatched "//path" request is re-routed by cloning it, which reading its
            # body would prevent: such a request counts as unknown here.
            if not request.body_exists or request.match_info.http_exception is not None:
                return None
            body_key = _key_in(await request.read())
            if body_key is None:
                return None
        try:
            return await self.workspace(request, body_key)
        except ApiError:
            return None


def _key_in(raw: bytes) -> str | None:
    """The ``api_key`` of a body that did not decode strictly, if it has a string one."""
    try:
        return _BODY_KEY.decode(raw).api_key
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None


async def authorized_body(
    request: web.Request, keyring: KeyRing, decoder: msgspec.json.Decoder[B]
) -> tuple[int, B]:
    """The workspace of the request's key and its body, the key checked first.

    For endpoints where the key may come in the body. A caller without a valid key gets a
    401 whatever it sent, so it learns nothing of what the endpoint would accept; a header
    key is checked before the body is even read.
    """
    if keyring.key_of(request) is not None:
        workspace = await keyring.workspace(request)
        return workspace, decode_body(await request.read(), decoder)
    raw = await request.read()
    try:
        body = decode_body(raw, decoder)
    except (msgspec.DecodeError, ApiError):
        # ValidationError is a DecodeError; a key in a malformed body is still looked at,
        # so a known caller learns what was wrong with it.
        await keyring.workspace(request, _key_in(raw))
        raise
    return await keyring.workspace(request, body.api_key), body
