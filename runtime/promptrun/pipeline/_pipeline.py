"""The run pipeline: template -> render -> provider -> stream -> record -> sink, written once.

:class:`Pipeline` is parametrised by its two ends and by how providers are reached:

- a :class:`TemplateSource` (the client's registry behind its template cache; the server's
  store),
- a :class:`RecordSink` (the client's log shipper, or the server inline; the server's store),
- :class:`Providers` (``call`` and ``open_stream`` of a :class:`CallPlan`: the SDK clients of
  :class:`~promptrun.pipeline.ProviderClients`; a native transport is a drop-in) and the
  :class:`ProviderRoutes` (base URLs: the environment's, or the server's sandbox),
- a :data:`Renderer` (where rendering runs: inline, or the server's render threads under its
  budget).

Each stage is one method, so what observes a run (a tracing span per stage) wraps them:
:meth:`Pipeline.template`, :meth:`Pipeline.render`, then :meth:`Pipeline.run` (provider call,
record, sink) or :meth:`Pipeline.stream` (opening the stream, then each chunk, then the
record and the sink). A run is logged however it ends once its provider call has started:
answered, failed (the provider's error is re-raised unchanged after its record is handed
over), cancelled by its caller before the provider answered (status WARNING, no response; the
cancellation goes on unchanged), or, for a stream, cut short by the consumer. A run cancelled
before its provider call (while its template is fetched or rendered) sent nothing and is not
logged.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio

from promptrun import blueprint
from promptrun.pipeline._prepare import PreparedRun, ProviderRoutes, Template, prepare
from promptrun.pipeline._records import LogOptions, failure_record, new_request_id, run_record
from promptrun.pipeline._run_stream import RunStream
from promptrun.pipeline.providers import CallPlan, close_stream
from promptrun.wire.ingest import TrackRecord

__all__ = [
    "Logged",
    "Pipeline",
    "PromptRef",
    "Providers",
    "RecordSink",
    "Renderer",
    "TemplateSource",
    "render_inline",
]

logger = logging.getLogger("promptlayer")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PromptRef:
    """Which template to run: a name, and optionally a version or release label, and the
    provider and model to run it on instead of its own."""

    name: str
    version: int | None = None
    label: str | None = None
    provider: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Logged:
    """What a sink says about a record it took: the request id the caller gets, and the
    blueprint its server stored when it answered with one (else the pipeline builds it)."""

    request_id: Any
    blueprint: dict[str, Any] | None = None


class TemplateSource(Protocol):
    """Where templates come from."""

    async def template(self, ref: PromptRef, variables: dict[str, Any]) -> Template:
        """The template ``ref`` names, unrendered unless only the source can render it."""
        ...


class RecordSink(Protocol):
    """Where a run's log record goes."""

    async def log(self, record: TrackRecord) -> Logged:
        """Take the record of a run that answered; what to tell the caller."""
        ...

    async def log_failure(self, record: TrackRecord) -> None:
        """Take the record of a run that failed or was cut short; never raises."""
        ...


class Providers(Protocol):
    """How a planned call reaches its provider."""

    async def call(self, plan: CallPlan) -> Any:
        """One non-streaming call; the provider's response object."""
        ...

    async def open_stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        """Start a streaming call; an async iterator of the provider's chunks."""
        ...


Renderer = Callable[[Callable[[], PreparedRun]], Awaitable[PreparedRun]]
"""Runs the (pure, CPU-bound) render stage: inline, or in a render thread under a budget."""


async def render_inline(work: Callable[[], T]) -> T:
    """Render in the caller's task (under the default rendering budget)."""
    return work()


class Pipeline:
    """One way to run a registry prompt, from its template to its log record."""

    def __init__(
        self,
        templates: TemplateSource,
        providers: Providers,
        sink: RecordSink,
        routes: ProviderRoutes | None = None,
        *,
        render: Renderer = render_inline,
        strict_variables: bool = False,
    ) -> None:
        self.templates = templates
        self.providers = providers
        self.sink = sink
        self.routes = routes or ProviderRoutes()
        self._render = render
        self._strict = strict_variables

    def with_ends(
        self, templates: TemplateSource, providers: Providers, sink: RecordSink
    ) -> Pipeline:
        """This pipeline over other ends (wrappers of its own), with the same settings."""
        return Pipeline(
            templates,
            providers,
            sink,
            self.routes,
            render=self._render,
            strict_variables=self._strict,
        )

    # -- the stages ----------------------------------------------------------------------
    async def template(self, ref: PromptRef, variables: dict[str, Any]) -> Template:
        """Stage 1: the template, from the source."""
        return await self.templates.template(ref, variables)

    async def render(
        self,
        ref: PromptRef,
        template: Template,
        variables: dict[str, Any],
        overrides: Mapping[str, Any] | None = None,
    ) -> PreparedRun:
        """Stage 2: the template rendered with ``variables``, and the call planned."""
        routes, strict = self.routes, self._strict
        return await self._render(
            lambda: prepare(ref.name, template, variables, overrides, routes, strict=strict)
        )

    async def run(self, prepared: PreparedRun, options: LogOptions) -> dict[str, Any]:
        """Stages 3 to 5: call the provider, build the record, hand it to the sink.

        Returns ``{"request_id", "raw_response", "prompt_blueprint"}``. A failed call is
        logged (status ERROR) and its exception re-raised as the provider's SDK raised it; a
        cancelled one is logged (status WARNING) and the cancellation re-raised.
        """
        plan = prepared.plan
        started = time.time()
        debug_call(prepared, "calling the provider")
        try:
            response = await self.providers.call(plan)
        except Exception as exc:
            debug_call(prepared, f"the call failed: {exc!r}", started)
            await self.sink.log_failure(failure_record(prepared, options, started, exc))
            raise
        except BaseException as exc:
            await self._log_cancelled(prepared, options, started, exc)
            raise
        debug_call(prepared, "answered", started)
        record = run_record(prepared, options, new_request_id(), started, response)
        logged = await self.sink.log(record)
        return {
            "request_id": logged.request_id,
            "raw_response": response,
            "prompt_blueprint": logged.blueprint
            or _blueprint(
                prepared, blueprint.response_message(plan.provider, plan.api_type, response)
            ),
        }

    async def stream(self, prepared: PreparedRun, options: LogOptions) -> RunStream:
        """Stages 3 to 5 for a stream: open it (a failure or a cancellation is logged and
        re-raised), then an iterator of items, one per chunk, and a final one carrying
        ``request_id``."""
        started = time.time()
        debug_call(prepared, "opening a stream")
        try:
            provider_stream = await self.providers.open_stream(prepared.plan)
        except Exception as exc:
            await self.sink.log_failure(failure_record(prepared, options, started, exc))
            raise
        except BaseException as exc:
            await self._log_cancelled(prepared, options, started, exc, streamed=True)
            raise
        return RunStream(
            self._chunks(provider_stream, prepared, options, started),
            functools.partial(self._unread, provider_stream, prepared, options, started),
        )

    async def _unread(
        self, provider_stream: Any, prepared: PreparedRun, options: LogOptions, started: float
    ) -> None:
        """A stream closed or dropped before its first item: close the provider's stream
        and log the run (the request was sent, and is billed) as never read."""
        debug_call(prepared, "the stream was closed before it was read", started)
        with anyio.CancelScope(shield=True):
            try:
                await self.sink.log_failure(
                    run_record(
                        prepared,
                        options,
                        new_request_id(),
                        started,
                        None,
                        streamed=True,
                        status="WARNING",
                        error_message="the stream was closed (or dropped) before any chunk "
                        "was read; no response was received",
                    )
                )
            finally:
                await close_stream(provider_stream)

    async def _log_cancelled(
        self,
        prepared: PreparedRun,
        options: LogOptions,
        started: float,
        exc: BaseException,
        *,
        streamed: bool = False,
    ) -> None:
        """Log a run whose caller cancelled it (or was interrupted) once its provider stage
        had started: the request may well have reached the provider, which bills it (a run
        still waiting for a ``provider_concurrency`` slot is logged too: from here, whether
        the request left cannot be told). Status WARNING, no response; shielded, so a
        cancelled scope cannot stop the record, and never raising over the cancellation."""
        what = type(exc).__name__
        debug_call(prepared, f"cancelled by the caller ({what})", started)
        try:
            record = run_record(
                prepared,
                options,
                new_request_id(),
                started,
                None,
                streamed=streamed,
                status="WARNING",
                error_message=f"cancelled by the caller ({what}) while the provider call was "
                "in flight; no response was received",
            )
            with anyio.CancelScope(shield=True):
                await self.sink.log_failure(record)
        except Exception as problem:  # the cancellation goes on whatever became of its record
            logger.warning("logging the cancelled run failed: %r", problem)

    async def _chunks(
        self,
        provider_stream: Any,
        prepared: PreparedRun,
        options: LogOptions,
        started: float,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """One item per provider chunk, then a final item carrying ``request_id``.

        Each item's ``prompt_blueprint`` holds everything received so far in its last
        message. The run is logged however the stream ends: complete, failed part-way (with
        the error), or closed early by the consumer (status WARNING, with what had arrived).
        """
        plan = prepared.plan
        acc = blueprint.stream_accumulator(
            plan.provider, plan.api_type, plan.template_type, prepared.model.get("name")
        )
        request_id = new_request_id()
        metadata = {"model": prepared.model}
        base = prepared.input_messages
        count = 0
        last: Any = None
        logged = False
        try:
            async for chunk in provider_stream:
                message = acc.add(chunk)
                count += 1
                last = chunk
                yield {
                    "request_id": None,
                    "raw_response": chunk,
                    "prompt_blueprint": {
                        "prompt_template": {
                            "type": "chat",
                            "messages": [*base, message],
                            "input_variables": [],
                        },
                        "metadata": metadata,
                    },
                }
            logged = True
            debug_call(prepared, f"the stream ended after {count} chunks", started)
            record = run_record(
                prepared, options, request_id, started, acc.final_response(), streamed=True
            )
            answer = await self.sink.log(record)
            yield {
                "request_id": answer.request_id,
                "raw_response": last,
                "prompt_blueprint": answer.blueprint or _blueprint(prepared, acc.message()),
            }
        except Exception as exc:
            if not logged:
                logged = True
                debug_call(prepared, f"the stream failed after {count} chunks: {exc!r}", started)
                await self.sink.log_failure(
                    failure_record(
                        prepared,
                        options,
                        started,
                        exc,
                        request_id=request_id,
                        streamed=True,
                        response=acc.final_response() if count else None,
                        message=f"the stream failed after {count} chunks: {exc}",
                    )
                )
            raise
        finally:
            with anyio.CancelScope(shield=True):
                if not logged:
                    # The consumer stopped early (break, aclose, cancellation): log what arrived.
                    await self.sink.log_failure(
                        run_record(
                            prepared,
                            options,
                            request_id,
                            started,
                            acc.final_response() if count else None,
                            streamed=True,
                            status="WARNING",
                            error_message=f"the consumer closed the stream after {count} "
                            "chunks; the response is partial",
                        )
                    )
                await close_stream(provider_stream)


def _blueprint(prepared: PreparedRun, output: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_template": {
            "type": "chat",
            "messages": [*prepared.input_messages, output],
            "input_variables": [],
        },
        "metadata": {"model": prepared.model},
    }


def debug_call(prepared: PreparedRun, event: str, started: float | None = None) -> None:
    """A DEBUG record of the provider call: provider, model, what happened, how long it took."""
    if logger.isEnabledFor(logging.DEBUG):
        took = "" if started is None else f" after {(time.time() - started) * 1000:.1f} ms"
        model = prepared.model.get("name") or prepared.plan.llm_kwargs.get("model")
        logger.debug("%s model %s: %s%s", prepared.plan.provider, model, event, took)
