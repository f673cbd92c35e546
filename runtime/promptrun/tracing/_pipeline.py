"""Spans at the run pipeline's stages: the pipeline's ends wrapped, the pipeline untouched.

:func:`traced_pipeline` returns the runtime's :class:`~promptrun.pipeline.Pipeline` with its
template source, providers and record sink wrapped:

- the template stage is the ``Prompt template fetch`` span (with the cache's answer),
- a provider call is a CLIENT span with the GenAI attributes (a stream's lasts until its last
  chunk, and gets its usage from the run's record, which is built from every chunk),
- the record sink writes the trace's ids into each record: ``span_id`` (the run's span, the
  field the peer SDK sends in ``/track-request``), so the logged request links to its trace.

The run span itself is opened by the client's ``run()`` (:meth:`ClientTracing.run`), since a
run is more than the pipeline's stages (validation, ``throw_on_error``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from promptrun.pipeline import CallPlan, Logged, Pipeline, PromptRef, Template
from promptrun.pipeline.providers import close_stream
from promptrun.tracing._genai import request_attributes, response_attributes, span_name
from promptrun.wire.ingest import TrackRecord

if TYPE_CHECKING:
    from promptrun._client_pipeline import RegistryTemplates
    from promptrun.pipeline import Providers, RecordSink

__all__ = [
    "RunState",
    "current_span_id",
    "enter",
    "leave",
    "record_error",
    "traced_pipeline",
]


@dataclass(slots=True)
class RunState:
    """One traced run: its span, and a stream's provider span waiting for the run's record."""

    span: trace.Span
    provider_span: trace.Span | None = None
    provider_end_ns: int | None = None


_run: ContextVar[RunState | None] = ContextVar("promptrun_traced_run", default=None)
_Tokens = tuple[Token[otel_context.Context], Token[RunState | None]]

# The spans of a run are entered and left by hand (attach/detach) rather than with the SDK's
# context managers: they are on every run's path, and the generator-based managers cost more
# CPU than the rest of a span's bookkeeping (make bench-tracing).


def enter(state: RunState) -> _Tokens:
    """Make ``state``'s run span current; :func:`leave` with what this returns."""
    return otel_context.attach(trace.set_span_in_context(state.span)), _run.set(state)


def leave(tokens: _Tokens) -> None:
    _run.reset(tokens[1])
    otel_context.detach(tokens[0])


def record_error(span: trace.Span, exc: BaseException) -> None:
    """An exception on a span, as the peer SDK records it: error.type, the event, ERROR."""
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    span.set_attribute("error.type", name)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{name}: {exc}"))


def span_id_of(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None


def current_span_id() -> str | None:
    """The current span's id in hex (a record made inside it names it), if there is one."""
    return span_id_of(trace.get_current_span())


class _Templates:
    def __init__(self, inner: RegistryTemplates, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def template(self, ref: PromptRef, variables: dict[str, Any]) -> Template:
        attributes: dict[str, Any] = {
            "node_type": "PROMPT_TEMPLATE",
            "prompt_name": ref.name,
            "promptlayer.prompt.name": ref.name,
            "promptlayer.prompt.requested.name": ref.name,
        }
        if ref.version is not None:
            attributes["promptlayer.prompt.requested.version"] = str(ref.version)
        if ref.label is not None:
            attributes["promptlayer.prompt.requested.label"] = ref.label
        span = self._tracer.start_span("Prompt template fetch", attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            template, outcome = await self._inner.template_and_outcome(ref, variables)
            found: dict[str, Any] = {"promptrun.template.cache": outcome}
            version = template.body.get("version")
            if isinstance(version, int):
                found["promptlayer.prompt.version"] = str(version)
            prompt_id = template.body.get("id")
            if isinstance(prompt_id, int):
                found["promptlayer.prompt.id"] = str(prompt_id)
            span.set_attributes(found)
            return template
        except BaseException as exc:
            record_error(span, exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()


class _Providers:
    def __init__(self, inner: Providers, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def call(self, plan: CallPlan) -> Any:
        span = self._tracer.start_span(
            span_name(plan),
            kind=SpanKind.CLIENT,
            attributes=request_attributes(plan, streamed=False),
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            response = await self._inner.call(plan)
        except BaseException as exc:
            record_error(span, exc)
            span.end()
            raise
        finally:
            otel_context.detach(token)
        span.set_attributes(response_attributes(plan.provider, response))
        span.end()
        return response

    async def open_stream(self, plan: CallPlan) -> AsyncIterator[Any]:
        span = self._tracer.start_span(
            span_name(plan),
            kind=SpanKind.CLIENT,
            attributes=request_attributes(plan, streamed=True),
        )
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                stream = await self._inner.open_stream(plan)
        except BaseException as exc:
            record_error(span, exc)
            span.end()
            raise
        return _ProviderStream(stream, span, _run.get())


class _ProviderStream:
    """A provider stream whose span ends with it; with a traced run, the run's record (built
    from every chunk) gives the span its usage and finish reason (see :class:`_Sink`)."""

    def __init__(self, inner: Any, span: trace.Span, state: RunState | None) -> None:
        self._inner = inner
        self._iter = inner.__aiter__()
        self._span = span
        self._state = state
        self._chunks = 0
        self._ended = False

    def __aiter__(self) -> _ProviderStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._iter.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._chunks += 1
        return chunk

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self._span
        span.set_attribute("promptrun.stream.chunks", self._chunks)
        if exc is not None:
            record_error(span, exc)
        state = self._state
        if exc is None and state is not None and state.provider_span is None:
            # Ended by the run's record, which says what the whole stream used.
            state.provider_span, state.provider_end_ns = span, time.time_ns()
            return
        span.end()

    async def aclose(self) -> None:
        if not self._ended:
            self._ended = True
            self._span.set_attribute("promptrun.stream.chunks", self._chunks)
            self._span.set_attribute("promptrun.stream.closed_early", True)
            self._span.end()
        await close_stream(self._inner)

    close = aclose  # close_stream() looks for close() first


class _Sink:
    def __init__(self, inner: RecordSink) -> None:
        self._inner = inner

    def _mark(self, record: TrackRecord) -> None:
        state = _run.get()
        span_id = span_id_of(state.span) if state is not None else current_span_id()
        if span_id is not None:
            record.body["span_id"] = span_id
        if state is not None and state.provider_span is not None:
            provider_span, state.provider_span = state.provider_span, None
            provider = str(record.body.get("provider_type") or "")
            provider_span.set_attributes(
                response_attributes(provider, record.body.get("request_response"))
            )
            provider_span.end(end_time=state.provider_end_ns)

    async def log(self, record: TrackRecord) -> Logged:
        self._mark(record)
        return await self._inner.log(record)

    async def log_failure(self, record: TrackRecord) -> None:
        self._mark(record)
        await self._inner.log_failure(record)


def traced_pipeline(
    pipeline: Pipeline, registry: RegistryTemplates, tracer: trace.Tracer
) -> Pipeline:
    """``pipeline`` with spans at its stages (a new Pipeline over the wrapped ends)."""
    return pipeline.with_ends(
        _Templates(registry, tracer), _Providers(pipeline.providers, tracer), _Sink(pipeline.sink)
    )


async def traced_stream(
    items: AsyncGenerator[Any, None], state: RunState, finish: Callable[[], None]
) -> AsyncGenerator[Any, None]:
    """A run's stream, each step with the run's span current; ``finish`` when it ends."""
    try:
        while True:
            tokens = enter(state)  # by hand, not a context manager: once per chunk
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                return
            finally:
                leave(tokens)
            yield item
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):
            record_error(state.span, exc)
        raise
    finally:
        tokens = enter(state)
        try:
            await items.aclose()
        finally:
            leave(tokens)
        finish()
