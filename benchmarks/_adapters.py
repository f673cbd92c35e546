"""One face over each implementation the benchmarks compare: promptrun, the peer SDK, raw SDK.

Standalone (stdlib at import time): each adapter imports its own SDK when it is built, so a
worker measuring the peer or a raw SDK never imports promptrun. Every adapter offers the same
four verbs: ``call`` (one run), ``stream`` (one streaming run), ``log`` (one log_request),
``finish`` (ship what is pending: promptrun's ``flush``, a no-op for the others).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = [
    "IMPLS",
    "AsyncAdapter",
    "SyncAdapter",
    "content_of",
    "log_request_kwargs",
    "make_async",
    "make_sync",
    "request_id_of",
]

IMPLS = ("promptrun", "peer", "raw", "raw-aiohttp")
FLUSH_TIMEOUT = 300.0


class Unsupported(Exception):
    """This implementation has no such operation (raw SDKs have no log_request)."""


def log_request_kwargs() -> dict[str, Any]:
    """A log_request body like one after a small OpenAI chat call."""
    now = time.time()
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You are brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Say hello to Ada."}]},
    ]
    answer = [{"role": "assistant", "content": [{"type": "text", "text": "Hello, Ada!"}]}]
    return {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": {"type": "chat", "messages": messages},
        "output": {"type": "chat", "messages": answer},
        "request_start_time": now - 0.4,
        "request_end_time": now,
        "parameters": {"temperature": 0.3},
        "tags": ["bench"],
        "input_tokens": 20,
        "output_tokens": 5,
    }


def content_of(item: Any) -> str:
    """The text a streamed item carries (a provider chunk, or a wrapper's item dict)."""
    raw = item.get("raw_response") if isinstance(item, dict) else item
    if isinstance(raw, dict):
        choices = raw.get("choices") or []
        delta = choices[0].get("delta", {}) if choices else {}
        return str(delta.get("content") or "")
    choices = getattr(raw, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return str(getattr(delta, "content", None) or "")


def request_id_of(item: Any) -> Any:
    return item.get("request_id") if isinstance(item, dict) else None


class SyncAdapter:
    """Blocking calls through one implementation."""

    def __init__(self, impl: str, cfg: dict[str, Any], cache_ttl: float) -> None:
        self.impl = impl
        self.cfg = cfg
        self.prompt = cfg["prompt_name"]
        self.variables = cfg["input_variables"]
        self.kwargs = cfg["llm_kwargs"]
        self.client: Any
        if impl == "promptrun":
            import promptrun

            self.client = promptrun.PromptLayer(cache_ttl_seconds=cache_ttl)
        elif impl == "peer":
            import promptlayer

            self.client = promptlayer.PromptLayer(cache_ttl_seconds=cache_ttl)
        elif impl == "raw":
            import openai

            self.client = openai.OpenAI()
        else:
            raise Unsupported(f"{impl} has no sync client")

    def call(self) -> None:
        if self.impl == "raw":
            answer = self.client.chat.completions.create(**self.kwargs)
            if not answer.choices:
                raise RuntimeError("no choices in the answer")
            return
        result = self.client.run(self.prompt, input_variables=self.variables)
        if not result or result.get("raw_response") is None:
            raise RuntimeError(f"run() returned {result!r}")

    def stream(self) -> Iterator[Any]:
        if self.impl == "raw":
            return iter(
                self.client.chat.completions.create(
                    **self.kwargs, stream=True, stream_options={"include_usage": True}
                )
            )
        return iter(self.client.run(self.prompt, input_variables=self.variables, stream=True))

    def log(self, kwargs: dict[str, Any]) -> None:
        if self.impl == "raw":
            raise Unsupported("raw SDKs have no log_request")
        self.client.log_request(**kwargs)

    def finish(self) -> bool:
        if self.impl == "promptrun":
            return bool(self.client.flush(FLUSH_TIMEOUT))
        return True

    def stats(self) -> dict[str, int]:
        return dict(self.client.stats()) if self.impl == "promptrun" else {}

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


class AsyncAdapter:
    """Awaitable calls through one implementation; build it inside the running loop."""

    def __init__(self, impl: str, cfg: dict[str, Any], cache_ttl: float) -> None:
        self.impl = impl
        self.cfg = cfg
        self.prompt = cfg["prompt_name"]
        self.variables = cfg["input_variables"]
        self.kwargs = cfg["llm_kwargs"]
        self.client: Any
        if impl == "promptrun":
            import promptrun

            self.client = promptrun.AsyncPromptLayer(cache_ttl_seconds=cache_ttl)
        elif impl == "peer":
            import promptlayer

            self.client = promptlayer.AsyncPromptLayer(cache_ttl_seconds=cache_ttl)
        elif impl == "raw":
            import openai

            self.client = openai.AsyncOpenAI()
        elif impl == "raw-aiohttp":
            import openai

            self.client = openai.AsyncOpenAI(http_client=openai.DefaultAioHttpClient())
        else:
            raise Unsupported(impl)

    @property
    def raw(self) -> bool:
        return self.impl.startswith("raw")

    async def call(self) -> None:
        if self.raw:
            answer = await self.client.chat.completions.create(**self.kwargs)
            if not answer.choices:
                raise RuntimeError("no choices in the answer")
            return
        result = await self.client.run(self.prompt, input_variables=self.variables)
        if not result or result.get("raw_response") is None:
            raise RuntimeError(f"run() returned {result!r}")

    async def stream(self) -> AsyncIterator[Any]:
        if self.raw:
            stream = await self.client.chat.completions.create(
                **self.kwargs, stream=True, stream_options={"include_usage": True}
            )
        else:
            stream = await self.client.run(self.prompt, input_variables=self.variables, stream=True)
        return stream.__aiter__()  # type: ignore[no-any-return]

    async def log(self, kwargs: dict[str, Any]) -> None:
        if self.raw:
            raise Unsupported("raw SDKs have no log_request")
        await self.client.log_request(**kwargs)

    async def finish(self) -> bool:
        if self.impl == "promptrun":
            return bool(await self.client.flush(FLUSH_TIMEOUT))
        return True

    def stats(self) -> dict[str, int]:
        return dict(self.client.stats()) if self.impl == "promptrun" else {}

    async def close(self) -> None:
        for name in ("aclose", "close"):
            close = getattr(self.client, name, None)
            if close is not None:
                result = close()
                if hasattr(result, "__await__"):
                    await result
                return


def make_sync(impl: str, cfg: dict[str, Any], cache_ttl: float) -> SyncAdapter:
    return SyncAdapter(impl, cfg, cache_ttl)


def make_async(impl: str, cfg: dict[str, Any], cache_ttl: float) -> AsyncAdapter:
    return AsyncAdapter(impl, cfg, cache_ttl)
