"""One client's tracing: which tracer provider, promptrun's exporter on it, the run span.

Made by a client constructed with ``enable_tracing=True`` (this is the first module that
imports OpenTelemetry). The provider is ``tracer_provider=`` if given, else the global one
when it is an OpenTelemetry SDK provider (the application's: promptrun's spans join its traces
and its exporters), else one of promptrun's own, shared by the clients of the process that send to the same
endpoint with the same key.
promptrun's exporter (:class:`~promptrun.tracing._export.CountingProcessor` over the OTLP/HTTP
exporter) is added once per provider, endpoint and API key, so many clients cost one export
thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from promptrun._version import __version__
from promptrun.tracing._export import CountingProcessor
from promptrun.tracing._pipeline import (
    RunState,
    current_span_id,
    enter,
    leave,
    record_error,
    traced_stream,
)

if TYPE_CHECKING:
    from promptrun.workflows.definition import NodeSpec
    from promptrun.workflows.engine import NodeResult

__all__ = ["ClientTracing", "traces_endpoint"]

logger = logging.getLogger("promptlayer")

_lock = threading.Lock()
_w3c = TraceContextTextMapPropagator()
_own_providers: dict[tuple[str, str], TracerProvider] = {}
_processors: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], CountingProcessor]] = (
    weakref.WeakKeyDictionary()
)


def traces_endpoint(base_url: str) -> str:
    """``PROMPTLAYER_OTLP_TRACES_ENDPOINT``, else ``{base_url}/v1/traces`` (as the peer SDK)."""
    return os.environ.get("PROMPTLAYER_OTLP_TRACES_ENDPOINT") or f"{base_url.rstrip('/')}/v1/traces"


def _provider(given: Any, endpoint: str, api_key: str) -> Any:
    if given is not None:
        if not callable(getattr(given, "add_span_processor", None)):
            raise TypeError(
                "tracer_provider must be an OpenTelemetry SDK TracerProvider "
                f"(opentelemetry.sdk.trace.TracerProvider), not {type(given).__name__}"
            )
        return given
    current = trace.get_tracer_provider()
    if callable(getattr(current, "add_span_processor", None)):
        return current  # the application configured OpenTelemetry: join it
    with _lock:  # one of promptrun's own per destination: its spans go there alone
        own = _own_providers.get((endpoint, api_key))
        if own is None:
            service = os.environ.get("OTEL_SERVICE_NAME") or "promptrun"
            own = TracerProvider(resource=Resource.create({"service.name": service}))
            _own_providers[(endpoint, api_key)] = own
        return own


def _processor(provider: Any, endpoint: str, api_key: str) -> CountingProcessor:
    with _lock:
        mine = _processors.setdefault(provider, {})
        found = mine.get((endpoint, api_key))
        if found is None:
            exporter = OTLPSpanExporter(
                endpoint=endpoint,
                headers={"X-Api-Key": api_key, "User-Agent": f"promptrun/{__version__}"},
            )
            found = mine[(endpoint, api_key)] = CountingProcessor(exporter)
            provider.add_span_processor(found)
        return found


class ClientTracing:
    """What a client with ``enable_tracing=True`` traces with."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        tracer_provider: Any = None,
        tracing_providers: Iterable[str] | None = None,
    ) -> None:
        self.endpoint = traces_endpoint(base_url)
        self.provider = _provider(tracer_provider, self.endpoint, api_key)
        self.processor = _processor(self.provider, self.endpoint, api_key)
        self.tracer = self.provider.get_tracer("promptrun", __version__)
        if tracing_providers is not None:
            logger.warning(
                "tracing_providers=%r: promptrun traces its own provider calls (with the GenAI "
                "semantic conventions' attributes), so it instruments no provider SDK",
                list(tracing_providers),
            )

    def stats(self) -> dict[str, int]:
        return self.processor.stats.as_dict()

    def flush(self, timeout: float) -> bool:
        """Export what waits; True when all of it went within ``timeout`` seconds.

        Blocks the calling thread for at most ``timeout``: the export runs in a thread of its
        own (an exporter retrying a server that is down takes longer; it goes on alone).
        """
        done = threading.Event()
        answer: list[bool] = []
        failed = self.processor.stats.failed

        def export() -> None:
            answer.append(self.processor.force_flush())
            done.set()

        threading.Thread(target=export, name="promptrun-span-flush", daemon=True).start()
        stats = self.processor.stats
        return done.wait(timeout) and answer[0] and not stats.queued and stats.failed == failed

    # -- what a request carries -----------------------------------------------------------
    @staticmethod
    def trace_headers() -> dict[str, str]:
        """W3C ``traceparent`` (and ``tracestate``) of the current span, for a request whose
        server records spans under it (``run_workflow`` on the server); empty without one."""
        headers: dict[str, str] = {}
        _w3c.inject(headers)
        return headers

    @staticmethod
    def link(body: dict[str, Any]) -> None:
        """A record made inside a span names it (``span_id``), so its request links back."""
        span_id = current_span_id()
        if span_id is not None:
            body["span_id"] = span_id

    # -- the run span --------------------------------------------------------------------
    async def run(
        self,
        prompt_name: str,
        version: int | None,
        label: str | None,
        metadata: Mapping[str, Any] | None,
        call: Callable[[], Awaitable[Any]],
    ) -> Any:
        """``call()`` (a run) inside its ``PromptLayer Run`` span; a stream's span lasts
        until the stream ends."""
        span = self.tracer.start_span(
            "PromptLayer Run", attributes=_run_attributes(prompt_name, version, label, metadata)
        )
        state = RunState(span)
        result: Any = None
        tokens = enter(state)
        try:
            result = await call()
        except BaseException as exc:
            record_error(span, exc)
            span.end()
            raise
        finally:
            leave(tokens)
        if isinstance(result, AsyncGenerator):
            return traced_stream(result, state, span.end)
        span.end()
        return result

    @contextlib.contextmanager
    def workflow(self, name: str, execution: str) -> Iterator[trace.Span]:
        """The span of one ``run_workflow()``; a local run's nodes are its children."""
        with self.tracer.start_as_current_span(
            f"Workflow {name}",
            attributes={
                "node_type": "WORKFLOW",
                "promptrun.workflow.name": name,
                "promptrun.workflow.execution": execution,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                record_error(span, exc)
                raise

    @contextlib.contextmanager
    def node(self, node: NodeSpec, result: NodeResult) -> Iterator[None]:
        """The span of one workflow node (the engine's observer), with how it ended."""
        with self.tracer.start_as_current_span(
            f"Workflow node {node.name}",
            attributes={"promptrun.workflow.node.name": node.name, "node_type": node.type},
        ) as span:
            yield
            span.set_attribute("promptrun.workflow.node.status", str(result.status))
            if result.request_id is not None:
                span.set_attribute("promptrun.request_id", str(result.request_id))
            if result.error_message:
                span.set_status(Status(StatusCode.ERROR, result.error_message[:1024]))

    @contextlib.contextmanager
    def batch_span(self, records: int, mode: str) -> Iterator[trace.Span]:
        """The log shipper's span for one batch: a trace of its own, never the caller's."""
        with self.tracer.start_as_current_span(
            "promptrun log batch",
            context=otel_context.Context(),
            attributes={"promptrun.log.records": records, "promptrun.log.mode": mode},
        ) as span:
            yield span


def _run_attributes(
    name: str, version: int | None, label: str | None, metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "node_type": "CODE_EXECUTION",
        "prompt_name": name,
        "promptlayer.prompt.name": name,
        "promptlayer.telemetry.source": "promptrun",
        "promptlayer.telemetry.source_version": __version__,
    }
    if version is not None:
        attributes["promptlayer.prompt.version"] = str(version)
    if label is not None:
        attributes["promptlayer.prompt.label"] = label
    for key, value in (metadata or {}).items():
        if isinstance(key, str) and key and isinstance(value, bool | int | float | str):
            attributes[f"promptlayer.metadata.{key}"] = value
    return attributes
