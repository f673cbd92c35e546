"""PromptLayer: the sync client, the async client driven through the portal thread.

Every method forwards to :class:`~promptrun.AsyncPromptLayer` with ``portal.call``; nothing is
implemented twice. Two paths avoid a portal round trip because they are hot: fire-and-forget
logging (``log_request``, ``track.*``) hands the record to the shipper with
``call_soon_threadsafe``, and a stream's chunks are pumped into a thread-safe queue that the
sync iterator drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

import anyio

from promptrun import _portal
from promptrun._boundary import public
from promptrun._client import AsyncPromptLayer
from promptrun._portal import call as portal_call
from promptrun._portal import fork_generation
from promptrun._track import TRACK_BODIES
from promptrun._types import (
    GetTemplateResult,
    LogRequestResult,
    PublishResult,
    RunResult,
    StreamItem,
    TemplateListItem,
    WorkflowNodeResult,
)
from promptrun.tracing import F

if TYPE_CHECKING:  # the records' modules load with the first client (see _client.py)
    from promptrun.wire.tracking import TrackEndpoint

__all__ = ["PromptLayer"]

logger = logging.getLogger("promptlayer")
T = TypeVar("T")

_END = object()


class PromptLayer:
    """Run registry prompts and log requests from sync code: scripts, threads, notebooks.

    Same arguments, methods and results as :class:`~promptrun.AsyncPromptLayer`. Safe to share
    between threads. Use it with ``with`` or call :meth:`close`; without either, pending logs
    are shipped at process exit (or when the client is garbage-collected) within
    ``shutdown_timeout`` seconds, and whatever is left waits in the spool for the next client.
    """

    def __init__(
        self,
        api_key: str | None = None,
        enable_tracing: bool = False,
        base_url: str | None = None,
        throw_on_error: bool = True,
        cache_ttl_seconds: float = 0,
        tracer_provider: Any = None,
        tracing_providers: Any = None,
        *,
        cache_refresh: Literal["wait", "background"] = "wait",
        cache_max_stale_seconds: float | None = None,
        http_timeout: float | None = None,
        inline_logging: bool = False,
        log_channel_size: int = 10_000,
        spool_dir: str | PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        shutdown_timeout: float = 5.0,
        provider_concurrency: int = 100,
        provider_base_urls: dict[str, str] | None = None,
        strict_variables: bool = False,
        native_transport: bool = True,
    ) -> None:
        self._make = functools.partial(
            AsyncPromptLayer,
            api_key,
            enable_tracing,
            base_url,
            throw_on_error,
            cache_ttl_seconds,
            tracer_provider,
            tracing_providers,
            cache_refresh=cache_refresh,
            cache_max_stale_seconds=cache_max_stale_seconds,
            http_timeout=http_timeout,
            inline_logging=inline_logging,
            log_channel_size=log_channel_size,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            shutdown_timeout=shutdown_timeout,
            provider_concurrency=provider_concurrency,
            provider_base_urls=provider_base_urls,
            strict_variables=strict_variables,
            native_transport=native_transport,
        )
        self._aclient = self._make()
        self._generation = fork_generation()
        self._closed = False
        self.templates = Templates(self)
        self.track = Track(self)
        self.group = Group(self)
        self.workflows = Workflows(self)

    @property
    def api_key(self) -> str:
        return self._aclient.api_key

    @property
    def base_url(self) -> str:
        return self._aclient.base_url

    @property
    def throw_on_error(self) -> bool:
        return self._aclient.throw_on_error

    # -- plumbing ------------------------------------------------------------------------
    def _async_client(self) -> AsyncPromptLayer:
        if self._generation != fork_generation():
            # A forked child: the parent's runtime and its queued records stay the parent's.
            self._aclient = self._make()
            self._generation = fork_generation()
        return self._aclient

    def _call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        # The portal runs the call in a copy of the caller's context: a trace continues there.
        if kwargs:
            return portal_call(functools.partial(fn, *args, **kwargs))
        return portal_call(fn, *args)

    def _submit(self, record: Any, caller: str | None = None) -> None:
        """Hand a record to the shipper without waiting for the portal."""
        client = self._async_client()
        rt = client._runtime
        if rt is None or rt.loop is None or rt.closed:
            self._call(client._runtime_here)
            rt = client._runtime
            assert rt is not None and rt.loop is not None
        # Encoded here, in the caller's thread: the loop thread only enqueues bytes.
        data = rt.shipper.encode_or_count(record, caller=caller)
        if data is not None:
            rt.shipper.submit_threadsafe(rt.loop, data)

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> PromptLayer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Ship what is queued (within ``shutdown_timeout``), spool the rest, stop."""
        if self._closed:
            return
        self._closed = True
        client = self._async_client()
        if client._runtime is not None or client._children_left_records():
            self._call(client.aclose)

    @public
    def flush(self, timeout: float | None = None) -> bool:
        """Ship everything logged so far; True when all of it is on the server."""
        return bool(self._call(self._async_client().flush, timeout))

    def stats(self) -> dict[str, int]:
        """Counters of the background logging (see AsyncPromptLayer.stats)."""
        return self._async_client().stats()

    def invalidate(self, name: str | None = None) -> None:
        """Drop cached templates: one name's, or all of them."""
        self._call(self._async_client().invalidate, name)  # runs in the loop thread

    def traceable(
        self, attributes: dict[str, Any] | None = None, name: str | None = None
    ) -> Callable[[F], F]:
        """A decorator: each call a span, with ``enable_tracing=True`` (see
        :meth:`AsyncPromptLayer.traceable`); spans of ``run()`` inside are its children."""
        return self._aclient.traceable(attributes, name)

    # -- the spec's surface ----------------------------------------------------------------
    @overload
    def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        stream: Literal[False] = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> RunResult: ...
    @overload
    def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        *,
        stream: Literal[True],
        provider: str | None = None,
        model: str | None = None,
    ) -> Iterator[StreamItem]: ...
    @overload
    def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        stream: bool = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> RunResult | Iterator[StreamItem]: ...
    @public
    def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        stream: bool = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> Any:
        """Fetch, run and log a registry prompt (see AsyncPromptLayer.run).

        With ``stream=True`` returns an iterator; breaking out of it early closes the provider
        stream, and the run is still logged.
        """
        args = (
            prompt_name, prompt_version, prompt_release_label, input_variables,
            model_parameter_overrides, tags, metadata, group_id, stream, provider, model,
        )  # fmt: skip
        if not stream:
            return self._call(self._async_client().run, *args)
        pipe = _Pipe()
        # One portal round trip opens the stream and starts pumping it.
        started = self._call(_open_stream, self._async_client().run, args, pipe)
        return SyncStream(pipe) if started else None

    @overload
    def run_workflow(
        self,
        workflow_id_or_name: int | str | None = None,
        input_variables: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        workflow_label_name: str | None = None,
        workflow_version: int | None = None,
        *,
        return_all_outputs: Literal[True],
        workflow_name: str | None = None,
        timeout: float | None = 3600,
        execution: Literal["server", "local"] = "server",
        tools: Mapping[str, Callable[..., Any]] | None = None,
        definition: Any = None,
        allow_unsandboxed_code: bool = False,
    ) -> dict[str, WorkflowNodeResult]: ...
    @overload
    def run_workflow(
        self,
        workflow_id_or_name: int | str | None = None,
        input_variables: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        workflow_label_name: str | None = None,
        workflow_version: int | None = None,
        return_all_outputs: bool = False,
        workflow_name: str | None = None,
        timeout: float | None = 3600,
        *,
        execution: Literal["server", "local"] = "server",
        tools: Mapping[str, Callable[..., Any]] | None = None,
        definition: Any = None,
        allow_unsandboxed_code: bool = False,
    ) -> Any: ...
    @public
    def run_workflow(
        self,
        workflow_id_or_name: int | str | None = None,
        input_variables: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        workflow_label_name: str | None = None,
        workflow_version: int | None = None,
        return_all_outputs: bool = False,
        workflow_name: str | None = None,
        timeout: float | None = 3600,
        *,
        execution: Literal["server", "local"] = "server",
        tools: Mapping[str, Callable[..., Any]] | None = None,
        definition: Any = None,
        allow_unsandboxed_code: bool = False,
    ) -> Any:
        """Run a workflow (see AsyncPromptLayer.run_workflow); no event loop of its own."""
        return self._call(
            self._async_client().run_workflow,
            workflow_id_or_name,
            input_variables,
            metadata,
            workflow_label_name,
            workflow_version,
            return_all_outputs,
            workflow_name,
            timeout,
            execution=execution,
            tools=tools,
            definition=definition,
            allow_unsandboxed_code=allow_unsandboxed_code,
        )

    @public
    def log_request(
        self,
        provider: str,
        model: str,
        input: dict[str, Any],
        output: dict[str, Any],
        request_start_time: float,
        request_end_time: float,
        parameters: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        prompt_name: str | None = None,
        prompt_version_number: int | None = None,
        prompt_input_variables: dict[str, Any] | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        price: float = 0.0,
        function_name: str = "",
        score: int = 0,
        prompt_id: int | None = None,
        score_name: str | None = None,
        api_type: str | None = None,
        status: str = "SUCCESS",
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> LogRequestResult:
        """Log a request you made yourself; returns at once (see AsyncPromptLayer.log_request)."""
        args = (
            provider, model, input, output, request_start_time, request_end_time, parameters,
            tags, metadata, prompt_name, prompt_version_number, prompt_input_variables,
            input_tokens, output_tokens, price, function_name, score, prompt_id, score_name,
            api_type, status, error_type, error_message,
        )  # fmt: skip
        client = self._async_client()
        if client._config.inline_logging:
            return cast(LogRequestResult, self._call(client.log_request, *args))
        from promptrun._logreq import build_log_record, logged

        record = build_log_record(*args)
        if client._tracing is not None:  # inside a traced function: the request names its span
            client._tracing.link(record.body)
        self._submit(record, "log_request()")
        return cast(LogRequestResult, logged(record))


class _Pipe:
    """What the loop thread's pump and the caller's iterator share (never the iterator itself,
    so that dropping it after a ``break`` finalises it)."""

    __slots__ = ("done", "queue", "scope", "stopped")

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.scope: anyio.CancelScope | None = None
        self.stopped = False  # the reader closed it (read and written on the loop only)
        self.done = threading.Event()

    def stop(self) -> None:
        """On the loop: end the pump now, or as soon as it starts."""
        self.stopped = True
        if self.scope is not None:
            self.scope.cancel()


_pumps: set[asyncio.Task[None]] = set()


async def _open_stream(run: Callable[..., Any], args: tuple[Any, ...], pipe: _Pipe) -> bool:
    agen = await run(*args)
    if agen is None:  # throw_on_error=False and the template could not be fetched
        return False
    task = asyncio.get_running_loop().create_task(_pump(agen, pipe))
    _pumps.add(task)  # the loop keeps only a weak reference to tasks
    task.add_done_callback(_pumps.discard)
    return True


async def _pump(agen: Any, pipe: _Pipe) -> None:
    out = pipe.queue
    try:
        with anyio.CancelScope() as scope:
            pipe.scope = scope
            if pipe.stopped:
                scope.cancel()
            try:
                async for item in agen:
                    out.put(item)
                    # Let the reading thread take the GIL now rather than after this loop
                    # thread has parsed the rest of a burst of chunks.
                    time.sleep(0)  # noqa: ASYNC251 - yields the GIL, not the loop
            except Exception as exc:
                out.put(_Failure(exc))
            finally:
                # Closing the run's generator closes the provider stream and logs the run.
                with anyio.CancelScope(shield=True):
                    await agen.aclose()
                out.put(_END)
    finally:
        pipe.done.set()


class SyncStream:
    """A sync iterator over a run's stream; chunks arrive as the provider sends them.

    Breaking out of a ``for`` loop over it (or :meth:`close`) closes the provider stream; the
    run is logged as cut short.
    """

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._finished = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        try:
            item = self._pipe.queue.get()
        except BaseException:
            # Ctrl-C (or another signal's exception) while waiting for a chunk: stop the
            # stream now, while the runtime runs, so the run is logged as cut short. Left to
            # the finaliser, the traceback would keep this iterator alive until interpreter
            # exit, when the portal thread can no longer run.
            self.close()
            raise
        if item is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._finished = True
            raise item.exc
        return item

    def close(self) -> None:
        """Stop reading: closes the provider stream; the run is logged as cut short."""
        if self._finished:
            return
        self._finished = True
        pipe = self._pipe
        # Scheduled, not awaited: closing never waits on the portal's loop, only (for a
        # bounded time) on the pump, which logs the run as it ends.
        if not pipe.done.is_set() and not _portal.soon(pipe.stop):
            return  # no portal in this process any more
        pipe.done.wait(timeout=30)

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter exit the portal thread is frozen: nothing could end the stream then.
        if not self._finished and not sys.is_finalizing():
            with contextlib.suppress(Exception):  # never raise from a finaliser
                self.close()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Templates:
    """``client.templates`` (sync): see AsyncTemplates."""

    def __init__(self, client: PromptLayer) -> None:
        self._client = client

    @public
    def get(self, prompt_name: str, params: dict[str, Any] | None = None) -> GetTemplateResult:
        found = self._client._call(self._client._async_client().templates.get, prompt_name, params)
        return cast(GetTemplateResult, found)

    @public
    def all(
        self, page: int = 1, per_page: int = 30, label: str | None = None
    ) -> list[TemplateListItem]:
        listed = self._client._call(
            self._client._async_client().templates.all, page, per_page, label
        )
        return cast(list[TemplateListItem], listed)

    @public
    def publish(self, body: dict[str, Any]) -> PublishResult:
        return cast(
            PublishResult, self._client._call(self._client._async_client().templates.publish, body)
        )

    def invalidate(self, name: str | None = None) -> None:
        self._client.invalidate(name)


class Workflows:
    """``client.workflows`` (sync): see AsyncWorkflows."""

    def __init__(self, client: PromptLayer) -> None:
        self._client = client

    @public
    def publish(self, body: dict[str, Any]) -> Any:
        return self._client._call(self._client._async_client().workflows.publish, body)


class Track:
    """``client.track`` (sync): see AsyncTrack. Queued behind the record it names."""

    def __init__(self, client: PromptLayer) -> None:
        self._client = client

    def _forward(self, name: TrackEndpoint, *args: Any) -> bool:
        body = TRACK_BODIES[name](*args)  # checked here, before anything is queued or sent
        client = self._client._async_client()
        if client._config.inline_logging:
            return bool(self._client._call(client._track, name, body))
        # Fire and forget, like log_request: no round trip to the portal.
        from promptrun.pipeline import new_request_id
        from promptrun.wire.ingest import TrackCallRecord

        self._client._submit(
            TrackCallRecord(client_request_id=new_request_id(), endpoint=name, body=body)
        )
        return True

    @public
    def metadata(self, request_id: int | str, metadata: dict[str, str]) -> bool:
        return self._forward("metadata", request_id, metadata)

    @public
    def score(self, request_id: int | str, score: int, score_name: str | None = None) -> bool:
        return self._forward("score", request_id, score, score_name)

    @public
    def prompt(
        self,
        request_id: int | str,
        prompt_name: str,
        prompt_input_variables: dict[str, Any],
        version: int | None = None,
        label: str | None = None,
    ) -> bool:
        return self._forward(
            "prompt", request_id, prompt_name, prompt_input_variables, version, label
        )

    @public
    def group(self, request_id: int | str, group_id: int) -> bool:
        return self._forward("group", request_id, group_id)


class Group:
    """``client.group`` (sync): see AsyncGroup."""

    def __init__(self, client: PromptLayer) -> None:
        self._client = client

    @public
    def create(self) -> int:
        return cast(int, self._client._call(self._client._async_client().group.create))
