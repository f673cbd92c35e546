"""Amazon Bedrock's Converse API through boto3's ``bedrock-runtime`` client.

boto3 is synchronous: each call runs in a worker thread (a pool of the adapter's own), and a
stream's events are read by a thread of the stream's own. One boto3 Session per route, one
client per set of credentials (boto3 clients are thread-safe; Sessions are not), created off
the loop because reading the AWS configuration and credential chain touches files. Why not
aioboto3: it pins exact botocore versions (it would downgrade the boto3 a user already has,
and fight ``anthropic[bedrock]``'s), and it wraps the same botocore code, so a thread hop per
call (tens of microseconds) is the whole difference.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import functools
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio

from promptrun.pipeline.providers._anthropic import SANDBOX_AWS, SANDBOX_REGION
from promptrun.pipeline.providers._base import Adapter, CallPlan, KeyProblem, status_of

__all__ = ["BedrockConverseAdapter"]

_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)
_DEFAULT_REGION = "us-east-1"  # as the PromptLayer SDK does when nothing names one
_END = object()


def _session_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    names = {
        "aws_access_key": "aws_access_key_id",
        "aws_secret_key": "aws_secret_access_key",
        "aws_session_token": "aws_session_token",
    }
    return {names[k]: v for k, v in options.items() if k in names and v}


def _make_client(base_url: str | None, options: dict[str, Any], concurrency: int) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(**_session_kwargs(options))
    region = options.get("aws_region") or session.region_name or _DEFAULT_REGION
    return session.client(
        "bedrock-runtime",
        region_name=region,
        endpoint_url=base_url,
        config=Config(max_pool_connections=concurrency),
    )


def _decode_bytes(value: Any) -> Any:
    """Image and document bytes travel as base64 text in kwargs; boto3 wants bytes."""
    if isinstance(value, list):
        return [_decode_bytes(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "source" and isinstance(item, dict) and isinstance(item.get("bytes"), str):
            item = {**item, "bytes": base64.b64decode(item["bytes"])}
        out[key] = _decode_bytes(item)
    return out


def converse_kwargs(llm_kwargs: dict[str, Any]) -> dict[str, Any]:
    """boto3 ``converse`` kwargs: ``model`` read as ``modelId``, image bytes decoded."""
    kwargs = dict(llm_kwargs)
    if "modelId" not in kwargs and "model" in kwargs:
        kwargs["modelId"] = kwargs.pop("model")
    if "messages" in kwargs:
        kwargs["messages"] = _decode_bytes(kwargs["messages"])
    return kwargs


class _EventStream:
    """An async iterator over a boto3 EventStream, read by a thread of its own.

    The thread reads events as they arrive into a buffer and wakes the loop only when the
    consumer waits. A thread per stream, not a hop through anyio's shared pool per event: a
    stream waits on the network for as long as the model talks, and must not hold a token
    that the application's other ``to_thread`` calls need. In CPU it costs about what a hop
    per event does (``benchmarks/bedrock_thread_hop.py``: both within 50-70 µs per event of
    iterating boto3's stream directly, botocore's own parsing being most of the rest).
    """

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self._events = response["stream"]
        self._loop = asyncio.get_running_loop()
        self._buffer: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._error: BaseException | None = None
        self._closed = False
        threading.Thread(target=self._pump, name="promptrun-bedrock-stream", daemon=True).start()

    def _pump(self) -> None:
        try:
            for event in self._events:
                self._put(event)
                if self._closed:
                    break
        except BaseException as exc:  # handed to the consumer, raised in its task
            self._error = exc
        finally:
            self._put(_END)

    def _put(self, event: Any) -> None:
        with self._lock:
            if event is _END:
                self._finished = True
            else:
                self._buffer.append(event)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            # RuntimeError: the loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_wake, waiter)

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            with self._lock:
                if self._buffer:
                    return self._buffer.popleft()
                if self._finished:
                    if self._error is not None and not self._closed:
                        raise self._error
                    raise StopAsyncIteration
                waiter = self._waiter = self._loop.create_future()
            await waiter

    async def aclose(self) -> None:
        self._closed = True
        await anyio.to_thread.run_sync(self._events.close)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class BedrockConverseAdapter(Adapter):
    """``converse`` and ``converse_stream`` of ``bedrock-runtime``.

    Credentials and region come from the AWS chain, or from the template's ``llm_kwargs`` as
    the PromptLayer SDK reads them (``aws_access_key``, ``aws_secret_key``,
    ``aws_session_token``, ``aws_region``). ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (boto3's own)
    or a base URL points it at another server.
    """

    client_option_keys = frozenset(
        {"aws_access_key", "aws_secret_key", "aws_session_token", "aws_region"}
    )
    concurrency = 64

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # Each call holds a thread for as long as the model takes: a pool of our own, not
        # anyio's default one that the rest of the application shares.
        self._threads = anyio.CapacityLimiter(self.concurrency)

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        options = dict(plan.client_options)
        if sandbox:
            options = {**SANDBOX_AWS, "aws_region": SANDBOX_REGION, **options}
        make = functools.partial(_make_client, base_url, options, self.concurrency)
        return await anyio.to_thread.run_sync(make)

    async def call(self, client: Any, plan: CallPlan) -> Any:
        call = functools.partial(client.converse, **converse_kwargs(plan.llm_kwargs))
        return await anyio.to_thread.run_sync(call, limiter=self._threads)

    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        call = functools.partial(client.converse_stream, **converse_kwargs(plan.llm_kwargs))
        return _EventStream(await anyio.to_thread.run_sync(call, limiter=self._threads))

    async def close(self, client: Any) -> None:
        await anyio.to_thread.run_sync(client.close)

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        from botocore import exceptions

        if isinstance(exc, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
            return KeyProblem("missing", self.info.key_var)
        if isinstance(exc, exceptions.NoRegionError):
            return KeyProblem("missing", "AWS_REGION")
        if isinstance(exc, exceptions.ClientError):
            code = exc.response.get("Error", {}).get("Code")
            if code in _AUTH_CODES:
                return KeyProblem("refused", self.info.key_var, status_of(exc))
        return None
