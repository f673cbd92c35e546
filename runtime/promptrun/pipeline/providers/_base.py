"""What every provider adapter has: the call plan it gets, and the shape of an adapter.

An adapter turns a :class:`CallPlan` into calls of one SDK. It holds no state of its own: the
:class:`ProviderClients` owns the clients the adapter opens (one per set of client options) and closes them.
SDK modules are imported inside the methods, never at import time.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from promptrun.pipeline.providers._table import ProviderInfo

__all__ = [
    "Adapter",
    "CallPlan",
    "KeyProblem",
    "KwargsFitter",
    "Wire",
    "accepted_params",
    "aiohttp_client",
    "status_of",
]

logger = logging.getLogger("promptlayer")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What to call: the provider, which of its APIs, and the kwargs.

    ``client_options`` are what the template's ``llm_kwargs`` said about the client rather
    than the call (Bedrock's ``aws_*`` credentials and region, a ``base_url``): they choose the
    client and are never logged. ``template`` names the prompt, for error messages.
    ``base_url`` is where the provider is reached (None: the SDK's default or its environment
    variable); ``sandbox`` says it is ``promptrun serve``'s sandbox, which takes placeholder
    credentials.
    """

    provider: str
    api_type: str | None  # "chat-completions" (default) | "responses"
    template_type: str  # "chat" | "completion"
    llm_kwargs: dict[str, Any]
    client_options: Mapping[str, Any] = field(default_factory=dict)
    template: str = ""
    base_url: str | None = None
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class KeyProblem:
    """A provider call failed for want of credentials: missing, or refused by the provider."""

    kind: Literal["missing", "refused"]
    variable: str
    status: int | None = None


class Wire(Protocol):
    """A native transport: calls a provider on the runtime's aiohttp session, answering with
    the SDK's own objects and raising the SDK's own exceptions."""

    def covers(self, plan: CallPlan, stream: bool) -> bool:
        """Whether it sends ``plan`` (streamed or not) as the SDK would (else the SDK is
        called)."""
        ...

    async def call(self, plan: CallPlan) -> Any: ...

    async def stream(self, plan: CallPlan) -> AsyncIterator[Any]: ...


class Adapter(ABC):
    """One provider's calls through its SDK. Subclasses override what differs."""

    #: llm_kwargs keys that configure the client, not the call (moved to ``client_options``).
    client_option_keys: frozenset[str] = frozenset()
    #: The SDK's stream sends its request on the first read, not when it is opened.
    lazy_stream = False
    #: The provider names :meth:`open_wire` may give a native transport for.
    wire_providers: frozenset[str] = frozenset()
    #: The module of that native transport (imported off the loop with the SDK).
    wire_module: str | None = None

    def __init__(self, info: ProviderInfo) -> None:
        self.info = info
        self.provider = info.name

    def client_key(self, plan: CallPlan) -> Hashable:
        """Which client serves ``plan``: one per distinct set of client options."""
        return tuple(sorted(plan.client_options.items()))

    @abstractmethod
    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        """A new SDK client. ``sandbox``: aim at ``promptrun serve`` with placeholder keys."""
        ...

    @abstractmethod
    async def call(self, client: Any, plan: CallPlan) -> Any:
        """One non-streaming call; returns the SDK's response object."""
        ...

    @abstractmethod
    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        """Start a streaming call; returns the SDK's async iterator of chunks."""
        ...

    async def close(self, client: Any) -> None:
        await client.close()

    def open_wire(self, session: Any, base_url: str | None, sandbox: bool) -> Wire | None:
        """A native transport for this provider, or None (none written, or no API key in the
        environment: the SDK then finds its credentials, or says what is missing)."""
        return None

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        """Whether ``exc`` says the credentials are missing or were refused."""
        return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK exception carries, whatever the SDK calls it."""
    for name in ("status_code", "code", "status"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


class KwargsFitter:
    """Moves parameters an installed SDK no longer names into ``extra_body``.

    Templates outlive SDK versions (anthropic 2.x dropped ``temperature`` from
    ``messages.create``); the provider's API may still take them in the body.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._accepted: dict[Any, frozenset[str] | None] = {}
        self._warned: set[str] = set()

    def __call__(self, method: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        func = getattr(method, "__func__", method)
        if func not in self._accepted:
            self._accepted[func] = accepted_params(method)
        accepted = self._accepted[func]
        if accepted is None:
            return kwargs
        unknown = [k for k in kwargs if k not in accepted]
        if not unknown:
            return kwargs
        fitted = {k: v for k, v in kwargs.items() if k in accepted}
        extra = dict(kwargs.get("extra_body") or {})
        for k in unknown:
            extra[k] = kwargs[k]
            if k not in self._warned:
                self._warned.add(k)
                logger.info(
                    "the installed %s SDK has no %r parameter; sending it in the request body",
                    self.provider,
                    k,
                )
        fitted["extra_body"] = extra
        return fitted


def accepted_params(method: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword names ``method`` takes; None when it takes any (``**kwargs``)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params)


def aiohttp_client(sdk: Any) -> Any:
    """The SDK's aiohttp transport when its extra is installed (about 30% less CPU per call)."""
    factory = getattr(sdk, "DefaultAioHttpClient", None)
    if factory is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return factory()
    except (RuntimeError, ImportError):
        return None
