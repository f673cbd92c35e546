"""API keys: which workspace a request acts in, and whether it may manage keys.

A key is accepted from the ``X-API-KEY`` header, ``Authorization: Bearer <key>``, or the
body's ``api_key`` (where the peer SDK puts it for several endpoints), in that order.

How keys are stored: as ``HMAC-SHA256(secret, SHA-256(key))``, the secret made once per
database and shared by every server process on it (``Store.shared_secret``). Every request
authenticates, so the check must cost microseconds: a slow salted hash (bcrypt, scrypt,
argon2: tens of milliseconds by design) per request is out of the question, and keys this
server makes are 192 random bits, beyond any guessing. The HMAC keeps low-entropy keys given
to ``--api-key`` from being looked up in precomputed tables should the key table leak
without the secret (a copy of the table, a log of its rows). Keys stored before were plain
SHA-256 digests: the first start wraps each in the HMAC, which the inner SHA-256 makes
possible without knowing the key.

Verified keys are kept in memory by digest, and re-read in one query every ``recheck``
seconds (0.25 by default), so a key revoked by any process (or by ``promptrun keys revoke
--db``) is refused by every process within about half a second. A key's last use is written
at most once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import msgspec
from aiohttp import web

from promptrun._render_threads import RENDER_TENANT
from promptrun.server._bodies import read_body_bytes
from promptrun.server._http import ApiError, decode_body
from promptrun.server._state import KEYRING
from promptrun.server.store.base import ApiKey, KeyGrant, NewKey, Store

__all__ = [
    "DEFAULT_WORKSPACE",
    "HMAC_SECRET",
    "KeyHasher",
    "KeyReport",
    "KeyRing",
    "authorized_body",
    "hash_key",
    "key_hint",
    "new_key",
    "parse_key_spec",
    "refuse_unknown_header_key",
]

log = logging.getLogger("promptrun.server")

DEFAULT_WORKSPACE = "default"
HMAC_SECRET = "api-key-hmac"  # the name of the secret in the store
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
    """SHA-256 of the key, in hex: what the HMAC is taken of (and how keys were once stored)."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyHasher:
    """The stored form of a key: ``HMAC-SHA256(secret, hash_key(key))`` in hex."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def rehash(self, sha256_hex: str) -> str:
        """The stored form of a key known only by its SHA-256 (one stored before HMACs)."""
        return hmac.new(self._secret, sha256_hex.encode(), hashlib.sha256).hexdigest()

    def digest(self, key: str) -> str:
        return self.rehash(hash_key(key))


def new_key() -> str:
    """A fresh key in the PromptLayer style: ``pl_`` and 48 hex digits."""
    return "pl_" + secrets.token_hex(24)


def key_hint(key: str) -> str:
    """What a listing shows of a key: its last four characters, if it is long enough that
    they give little away."""
    return "…" + key[-4:] if len(key) >= 16 else ""


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


@dataclass(frozen=True, slots=True)
class KeyReport:
    """What the database held at start: every key (revoked too), and the rows of the keys
    given to ``--api-key`` this time, in the order given."""

    keys: list[ApiKey] = field(default_factory=list)
    given: list[ApiKey] = field(default_factory=list)


_UNKNOWN = (
    "unknown API key: use a key this server accepts (promptrun serve --api-key, the key it "
    "generated, or one made with promptrun keys create); revoked keys are refused too"
)


class KeyRing:
    """Resolves a request's key to what it may do; registers the configured keys at start."""

    def __init__(
        self,
        store: Store,
        specs: Iterable[str] = (),
        *,
        generate: bool = True,
        recheck: float = 0.25,
        touch_every: float = 60.0,
    ) -> None:
        self._store = store
        self._keys = [parse_key_spec(spec) for spec in specs]
        self._generate = generate
        self._recheck = recheck
        self._touch_every = touch_every
        self._hasher: KeyHasher | None = None
        self._cache: dict[str, KeyGrant] = {}
        self._used: dict[int, float] = {}  # key id -> when it was last used (wall clock)
        self._touched: dict[int, float] = {}  # key id -> the last use written to the store
        self._hints: dict[int, str] = {}  # hints for keys stored without one
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.generated: GeneratedKey | None = None
        self.report = KeyReport()

    # -- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Key the HMAC, upgrade digests from before, store the configured keys (with none
        configured or stored, make one), and start re-checking verified keys."""
        self._hasher = KeyHasher(await self._store.shared_secret(HMAC_SECRET))
        upgraded = await self._store.upgrade_key_hashes(self._hasher.rehash)
        if upgraded:
            log.info("re-hashed %d API keys stored before keys were HMACs", upgraded)
        new = [
            NewKey(
                key_hash=self.digest(key),
                workspace=ws,
                name="--api-key",
                hint=key_hint(key),
                source="api-key",
            )
            for ws, key in self._keys
        ]
        if not new and self._generate and not await self._store.has_keys():
            self.generated = GeneratedKey(DEFAULT_WORKSPACE, new_key())
            new = [
                NewKey(
                    key_hash=self.digest(self.generated.key),
                    workspace=DEFAULT_WORKSPACE,
                    name="generated at start",
                    role="admin",
                    hint=key_hint(self.generated.key),
                    source="generated",
                )
            ]
        given = await self._store.register_keys(new) if new else []
        keys = await self._store.list_keys(None, revoked=True)
        self.report = KeyReport(keys=keys, given=given if self.generated is None else [])
        self._task = asyncio.get_running_loop().create_task(self._keep_checking())

    async def close(self) -> None:
        """Stop re-checking; write the last uses not written yet."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._touch(every=0.0)

    def digest(self, key: str) -> str:
        if self._hasher is None:
            raise RuntimeError("the key ring is not started")
        return self._hasher.digest(key)

    # -- what a key may do -------------------------------------------------------------------

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

    async def grant_for_key(self, key: str) -> KeyGrant | None:
        """What ``key`` may do, or None for an unknown or revoked key."""
        digest = self.digest(key)
        grant = self._cache.get(digest)
        if grant is None:
            grant = (await self._store.grants_for([digest])).get(digest)
            if grant is None:
                return None
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = grant
            if not grant.has_hint:
                self._hints[grant.key_id] = key_hint(key)
        self._used[grant.key_id] = time.time()
        return grant

    async def grant(self, request: web.Request, body_key: str | None = None) -> KeyGrant:
        """What the request's key may do; a 401 when it is missing, unknown or revoked."""
        key = self.key_of(request, body_key)
        if key is None:
            raise ApiError(
                401,
                "missing API key: send it in the X-API-KEY header, as Authorization: Bearer "
                "<key>, or as api_key in the JSON body",
            )
        grant = await self.grant_for_key(key)
        if grant is None:
            raise ApiError(401, _UNKNOWN)
        # Renderings this request starts (and the workflow runs it starts) queue as its
        # workspace's, so one workspace's flood of templates cannot hold another's back.
        RENDER_TENANT.set(grant.workspace)
        return grant

    async def workspace(self, request: web.Request, body_key: str | None = None) -> int:
        """The workspace id for the request's key; a 401 when it is missing or unknown."""
        return (await self.grant(request, body_key)).workspace

    async def admin(self, request: web.Request) -> KeyGrant:
        """The grant of an admin key; a 403 for a member key."""
        grant = await self.grant(request)
        if grant.role != "admin":
            raise ApiError(
                403,
                f"managing keys needs an admin key of this workspace; this key (id "
                f"{grant.key_id}) is a member key",
            )
        return grant

    def forget(self, key_id: int) -> None:
        """Refuse a key this process revoked at once, not at the next re-check."""
        for digest in [d for d, g in self._cache.items() if g.key_id == key_id]:
            del self._cache[digest]

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
            body_key = _key_in(await read_body_bytes(request))
            if body_key is None:
                return None
        try:
            return await self.workspace(request, body_key)
        except ApiError:
            return None

    # -- keeping the cache true --------------------------------------------------------------

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(self._recheck)
            try:
                await self._recheck_cached()
                await self._touch(every=self._touch_every)
            except Exception as exc:  # the database is away: keep what was verified
                if not self._failing:
                    log.warning("cannot re-check API keys against the store: %s", exc)
                self._failing = True
            else:
                self._failing = False

    async def _recheck_cached(self) -> None:
        digests = list(self._cache)
        if not digests:
            return
        fresh = await self._store.grants_for(digests)
        for digest in digests:
            grant = fresh.get(digest)
            if grant is None:
                self._cache.pop(digest, None)  # revoked (or gone)
            elif digest in self._cache:
                self._cache[digest] = grant

    async def _touch(self, *, every: float) -> None:
        due = [
            (key_id, when, self._hints.get(key_id, ""))
            for key_id, when in self._used.items()
            if when - self._touched.get(key_id, float("-inf")) >= every
            and when > self._touched.get(key_id, float("-inf"))
        ]
        if not due:
            return
        await self._store.touch_keys(due)
        for key_id, when, _ in due:
            self._touched[key_id] = when
            self._hints.pop(key_id, None)
        if len(self._used) > _MAX_CACHED:
            self._used.clear()
            self._touched.clear()


async def refuse_unknown_header_key(request: web.Request) -> None:
    """A 401 for a request to the API whose headers carry a key this server does not accept,
    before its body is read: a caller with a wrong key costs the server no body.

    Only the API's own routes: the sandbox providers take provider keys of any value in the
    same headers, and the dashboard signs in by session.
    """
    keyring = request.config_dict.get(KEYRING)
    if keyring is None or len(request.match_info.apps) > 1:
        return
    key = keyring.key_of(request)
    if key is not None and await keyring.grant_for_key(key) is None:
        raise ApiError(401, _UNKNOWN)


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
        return workspace, decode_body(await read_body_bytes(request), decoder)
    raw = await read_body_bytes(request)
    try:
        body = decode_body(raw, decoder)
    except (msgspec.DecodeError, ApiError):
        # ValidationError is a DecodeError; a key in a malformed body is still looked at,
        # so a known caller learns what was wrong with it.
        await keyring.workspace(request, _key_in(raw))
        raise
    return await keyring.workspace(request, body.api_key), body
