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

IMPLS = ("promptrun", "peer", "raw", "raw-aiohttp", "floor", "floor-batched")
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
        elif impl in ("floor", "floor-batched"):
            self.client = Floor(cfg, batched=impl == "floor-batched")
        else:
            raise Unsupported(impl)

    @property
    def raw(self) -> bool:
        return self.impl.startswith("raw")

    async def call(self) -> None:
        if self.impl.startswith("floor"):
            await self.client.call()
            return
        if self.raw:
            answer = await self.client.chat.completions.create(**self.kwargs)
            if not answer.choices:
                raise RuntimeError("no choices in the answer")
            return
        result = await self.client.run(self.prompt, input_variables=self.variables)
        if not result or result.get("raw_response") is None:
            raise RuntimeError(f"run() returned {result!r}")

    async def stream(self) -> AsyncIterator[Any]:
        if self.impl.startswith("floor"):
            raise Unsupported("the floor has no stream")
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
        if self.impl.startswith("floor"):
            return bool(await self.client.flush())
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


class Floor:
    """The practical floor for what ``run()`` does: a hand-written aiohttp client.

    Per run: one POST of the rendered kwargs to the provider (msgspec-encoded), the answer
    JSON-decoded, and the run's log record sent fire-and-forget on the same pooled session:
    one ``/track-request`` per run in the hosted API's shape, or (``batched``) into a list
    that a background task ships to promptrun's ``/promptrun/v1/ingest`` 500 at a time or
    every 50 ms. No template fetch (promptrun's is cached in these scenarios), no rendering,
    no typed objects, no retries, no spool: what no client can do with less.
    """

    def __init__(self, cfg: dict[str, Any], *, batched: bool) -> None:
        import os
        import uuid

        import aiohttp
        import msgspec

        self.kwargs = cfg["llm_kwargs"]
        self.variables = cfg["input_variables"]
        self.batched = batched
        self.encode = msgspec.json.Encoder().encode
        self.decode = msgspec.json.Decoder().decode
        self.uuid4 = uuid.uuid4
        self.provider_url = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"
        self.provider_headers = {
            "Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.api = os.environ["PROMPTLAYER_BASE_URL"].rstrip("/")
        self.api_key = os.environ["PROMPTLAYER_API_KEY"]
        self.api_headers = {"X-API-KEY": self.api_key, "Content-Type": "application/json"}
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.body = self.encode(self.kwargs)
        self.pending: set[Any] = set()
        self.batch: list[bytes] = []
        self.shipper: Any = None
        self.failures = 0

    async def call(self) -> None:
        import asyncio

        started = time.time()
        async with self.session.post(
            self.provider_url, data=self.body, headers=self.provider_headers
        ) as response:
            raw = await response.read()
            if response.status != 200:
                raise RuntimeError(f"provider answered {response.status}: {raw[:200]!r}")
        answer = self.decode(raw)
        if not answer.get("choices"):
            raise RuntimeError("no choices in the answer")
        body = {
            "function_name": "openai.chat.completions.create",
            "provider_type": "openai",
            "args": [],
            "kwargs": self.kwargs,
            "request_start_time": started,
            "request_end_time": time.time(),
            "prompt_input_variables": self.variables,
            "request_response": answer,
            "status": "SUCCESS",
        }
        if self.batched:
            record = {"type": "track", "client_request_id": str(self.uuid4()), "body": body}
            self.batch.append(self.encode(record))
            if self.shipper is None or self.shipper.done():
                self.shipper = asyncio.ensure_future(self._ship_batches())
            return
        body["api_key"] = self.api_key
        task = asyncio.ensure_future(self._post("/track-request", self.encode(body)))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _post(self, path: str, data: bytes) -> None:
        try:
            async with self.session.post(
                self.api + path, data=data, headers=self.api_headers
            ) as response:
                await response.read()
                if response.status >= 300:
                    self.failures += 1
        except Exception:
            self.failures += 1

    async def _ship_batches(self) -> None:
        import asyncio

        while self.batch:
            if len(self.batch) < 500:
                await asyncio.sleep(0.05)
            taken, self.batch = self.batch[:500], self.batch[500:]
            await self._post("/promptrun/v1/ingest", b'{"records":[' + b",".join(taken) + b"]}")

    async def flush(self) -> bool:
        import asyncio

        while self.pending or (self.shipper is not None and not self.shipper.done()):
            if self.shipper is not None:
                await self.shipper
            if self.pending:
                await asyncio.wait(list(self.pending))
        return self.failures == 0

    async def close(self) -> None:
        await self.session.close()


def make_sync(impl: str, cfg: dict[str, Any], cache_ttl: float) -> SyncAdapter:
    return SyncAdapter(impl, cfg, cache_ttl)


def make_async(impl: str, cfg: dict[str, Any], cache_ttl: float) -> AsyncAdapter:
    return AsyncAdapter(impl, cfg, cache_ttl)
