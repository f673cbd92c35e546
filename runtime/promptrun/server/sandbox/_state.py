"""The sandbox's mutable state: settings, queued failures and request statistics.

Pure data and validation; the control route and the provider routes share one instance.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_CHUNKS",
    "MAX_CHUNK_DELAY_MS",
    "MAX_FAILURES",
    "MAX_LATENCY_MS",
    "MAX_RETRY_AFTER",
    "MAX_TIMES",
    "PROVIDERS",
    "ControlError",
    "Failure",
    "RequestRecord",
    "SandboxSettings",
    "SandboxState",
    "parse_failure_header",
]

PROVIDERS: frozenset[str] = frozenset({"openai", "azure", "anthropic", "google"})
_RECENT = 100
_DEFAULT_RETRY_AFTER = 1.0

# Bounds on what the control endpoint and the override headers accept: enough for any test of a
# slow or failing provider, too little to park a client (or the server's connections) for hours.
MAX_LATENCY_MS = 60_000.0
"""Latency before a response, per request: milliseconds."""
MAX_CHUNK_DELAY_MS = 10_000.0
"""Delay between two pieces of a stream: milliseconds."""
MAX_CHUNKS = 1_000
"""Pieces a streamed reply is split into."""
MAX_RETRY_AFTER = 3_600.0
"""The Retry-After a queued failure sends: seconds."""
MAX_TIMES = 10_000
"""Uses of one queued failure."""
MAX_FAILURES = 1_000
"""Queued failures in all."""


class ControlError(ValueError):
    """A control request or an override header that the sandbox cannot apply."""


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """How the sandbox providers behave.

    `latency_ms` is waited before every response (before the first chunk of a stream),
    `chunks` is about how many content pieces a streamed reply is split into, and
    `chunk_delay_ms` is waited between those pieces.
    """

    latency_ms: float = 0.0
    chunks: int = 8
    chunk_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        _check_range("latency_ms", self.latency_ms, MAX_LATENCY_MS)
        _check_range("chunk_delay_ms", self.chunk_delay_ms, MAX_CHUNK_DELAY_MS)
        if not 1 <= self.chunks <= MAX_CHUNKS:
            raise ValueError(f"chunks must be between 1 and {MAX_CHUNKS}")


def _check_range(name: str, value: float, high: float) -> None:
    # "not <=" so that NaN fails too.
    if not 0 <= value <= high:
        raise ValueError(f"{name} must be between 0 and {high:g}")


@dataclass(slots=True)
class Failure:
    """One queued misbehaviour: an error status, a stream cut after N chunks, or a hang."""

    status: int | None = None
    retry_after: float | None = None
    cut_after_chunks: int | None = None
    hang: bool = False
    provider: str | None = None
    times: int = 1

    def describe(self) -> dict[str, Any]:
        return {
            k: v for k, v in dataclasses.asdict(self).items() if v is not None and v is not False
        }

    @classmethod
    def from_json(cls, raw: object) -> Failure:
        """Build a failure from a control body entry, refusing anything ambiguous."""
        if not isinstance(raw, Mapping):
            raise ControlError("each entry of 'fail' must be an object")
        unknown = set(raw) - {
            "status",
            "retry_after",
            "cut_after_chunks",
            "hang",
            "provider",
            "times",
        }
        if unknown:
            raise ControlError(f"unknown keys in a 'fail' entry: {sorted(unknown)}")
        status = _optional_int(raw, "status")
        cut = _optional_int(raw, "cut_after_chunks")
        hang = raw.get("hang", False)
        if not isinstance(hang, bool):
            raise ControlError("'hang' must be true or false")
        if (status is not None) + (cut is not None) + hang != 1:
            raise ControlError(
                "a 'fail' entry needs exactly one of 'status', 'cut_after_chunks', 'hang'"
            )
        if status is not None and not 400 <= status <= 599:
            raise ControlError("'status' must be between 400 and 599")
        if cut is not None and not 0 <= cut <= MAX_CHUNKS:
            raise ControlError(f"'cut_after_chunks' must be between 0 and {MAX_CHUNKS}")
        retry_after = _optional_number(raw, "retry_after")
        if retry_after is not None and not 0 <= retry_after <= MAX_RETRY_AFTER:
            raise ControlError(f"'retry_after' must be between 0 and {MAX_RETRY_AFTER:g} seconds")
        if status == 429 and retry_after is None:
            retry_after = _DEFAULT_RETRY_AFTER
        provider = raw.get("provider")
        if provider is not None and provider not in PROVIDERS:
            raise ControlError(f"'provider' must be one of {sorted(PROVIDERS)} or null")
        times = _optional_int(raw, "times")
        times = 1 if times is None else times
        if not 1 <= times <= MAX_TIMES:
            raise ControlError(f"'times' must be between 1 and {MAX_TIMES}")
        return cls(status, retry_after, cut, hang, provider, times)


def parse_failure_header(value: str) -> Failure:
    """Read an `x-sandbox-fail` header: a status (`429`, `500`), `cut:N` or `hang`."""
    value = value.strip().lower()
    if value == "hang":
        return Failure(hang=True)
    if value.startswith("cut:"):
        try:
            return Failure(cut_after_chunks=max(0, int(value[4:])))
        except ValueError:
            raise ControlError(f"bad x-sandbox-fail value {value!r}") from None
    try:
        status = int(value)
    except ValueError:
        raise ControlError(
            f"bad x-sandbox-fail value {value!r}: use 429, 500, cut:N or hang"
        ) from None
    if not 400 <= status <= 599:
        raise ControlError("x-sandbox-fail status must be between 400 and 599")
    return Failure(status=status, retry_after=_DEFAULT_RETRY_AFTER if status == 429 else None)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the sandbox remembers about one request (never the key itself)."""

    provider: str
    path: str
    stream: bool
    had_key: bool
    key_headers: tuple[str, ...]
    # Which client sent it (e.g. an SDK's "AsyncOpenAI/Python 1.x"; None without one), cut
    # to 120 characters.
    user_agent: str | None = None


@dataclass(slots=True)
class SandboxState:
    """Settings, the failure queue and statistics for one sandbox app."""

    initial: SandboxSettings
    settings: SandboxSettings = field(init=False)
    failures: deque[Failure] = field(default_factory=deque)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    recent: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=_RECENT))

    def __post_init__(self) -> None:
        self.settings = self.initial

    def record(self, route: str, record: RequestRecord) -> None:
        self.counts[record.provider, route] += 1
        self.recent.append(record)

    def take_failure(self, provider: str) -> Failure | None:
        """Consume one use of the first queued failure that applies to `provider`."""
        if not self.failures:
            return None
        for failure in self.failures:
            if failure.provider is None or failure.provider == provider:
                failure.times -= 1
                if failure.times == 0:
                    self.failures.remove(failure)
                return failure
        return None

    def reset(self) -> None:
        self.settings = self.initial
        self.failures.clear()
        self.counts.clear()
        self.recent.clear()

    def apply_control(self, body: object) -> None:
        """Apply a control body: optional reset first, then settings, then queued failures."""
        if not isinstance(body, Mapping):
            raise ControlError("the control body must be a JSON object")
        unknown = set(body) - {"latency_ms", "chunks", "chunk_delay_ms", "fail", "reset"}
        if unknown:
            raise ControlError(f"unknown control keys: {sorted(unknown)}")
        fail = body.get("fail", [])
        if not isinstance(fail, list):
            raise ControlError("'fail' must be a list")
        if len(fail) > MAX_FAILURES:
            raise ControlError(f"'fail' holds at most {MAX_FAILURES} entries")
        failures = [Failure.from_json(entry) for entry in fail]
        changes: dict[str, Any] = {}
        for key in ("latency_ms", "chunk_delay_ms"):
            if key in body:
                changes[key] = _optional_number(body, key)
        if "chunks" in body:
            changes["chunks"] = _optional_int(body, "chunks")
        base = self.initial if body.get("reset") is True else self.settings
        try:
            settings = dataclasses.replace(
                base, **{k: v for k, v in changes.items() if v is not None}
            )
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        queued = 0 if body.get("reset") is True else len(self.failures)
        if queued + len(failures) > MAX_FAILURES:
            raise ControlError(
                f"at most {MAX_FAILURES} failures can be queued ({queued} are): reset first"
            )
        if body.get("reset") is True:
            self.reset()
        self.settings = settings
        self.failures.extend(failures)

    def snapshot(self) -> dict[str, Any]:
        """Settings, queued failures and statistics as plain JSON data."""
        by_provider: dict[str, dict[str, int]] = {}
        for (provider, route), n in sorted(self.counts.items()):
            by_provider.setdefault(provider, {})[route] = n
        return {
            "settings": dataclasses.asdict(self.settings),
            "failures": [f.describe() for f in self.failures],
            "stats": {
                "total": sum(self.counts.values()),
                "counts": by_provider,
                "recent": [
                    {
                        "provider": r.provider,
                        "path": r.path,
                        "stream": r.stream,
                        "had_key": r.had_key,
                        "key_headers": list(r.key_headers),
                        "user_agent": r.user_agent,
                    }
                    for r in self.recent
                ],
            },
        }


def _optional_int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(f"'{key}' must be an integer")
    return value


def _optional_number(raw: Mapping[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"'{key}' must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ControlError(f"'{key}' must be a finite number")
    return number
