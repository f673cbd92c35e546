"""promptrun's span processor: OpenTelemetry's batched OTLP export, bounded and counted.

A :class:`CountingProcessor` hands ended spans to a ``BatchSpanProcessor`` (its own thread
exports them; a run never waits for an export) but never lets more than ``max_queue_size``
wait: a span over the bound is dropped at once, counted, and the first drop says so with a
WARNING. The exporter is wrapped to count what it exported and what it failed to export (a
server down, a refused key): "nothing lost silently", like the log shipper's counters, in
the clients' ``stats()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

__all__ = ["CountingProcessor", "TracingStats"]

logger = logging.getLogger("promptlayer")


class TracingStats:
    """What became of the spans promptrun's exporter was handed (thread-safe counters)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued = 0  # waiting in the batch processor now
        self.exported = 0
        self.dropped = 0  # over the bound, never exported
        self.failed = 0  # in exports that failed
        self.export_failures = 0
        self.warned = False

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {
                "spans_exported": self.exported,
                "spans_pending": self.queued,
                "spans_dropped": self.dropped,
                "spans_failed": self.failed,
                "span_export_failures": self.export_failures,
            }


class _CountingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, stats: TracingStats) -> None:
        self._inner = inner
        self._stats = stats

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        stats = self._stats
        with stats.lock:
            stats.queued -= len(spans)
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not end the export thread
            logger.debug("promptrun's span exporter raised: %r", exc)
            result = SpanExportResult.FAILURE
        first = False
        with stats.lock:
            if result is SpanExportResult.SUCCESS:
                stats.exported += len(spans)
            else:
                stats.failed += len(spans)
                stats.export_failures += 1
                first = stats.export_failures == 1
        if first:
            logger.warning(
                "promptrun could not export %d trace spans (the exporter's log says why); "
                "stats() counts spans_failed",
                len(spans),
            )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` over ``exporter`` that drops (and counts) spans over the bound."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_millis: float = 1000,
    ) -> None:
        self.stats = TracingStats()
        self.max_queue_size = max_queue_size
        self._batch = BatchSpanProcessor(
            _CountingExporter(exporter, self.stats),
            # One more than our own bound: the batch processor never drops on its own.
            max_queue_size=max_queue_size + 1,
            max_export_batch_size=min(max_export_batch_size, max_queue_size + 1),
            schedule_delay_millis=schedule_delay_millis,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return
        stats = self.stats
        with stats.lock:
            full = stats.queued >= self.max_queue_size
            if full:
                stats.dropped += 1
                warn, stats.warned = not stats.warned, True
            else:
                stats.queued += 1
        if full:
            if warn:
                logger.warning(
                    "promptrun's trace exporter is behind (%d spans waiting); spans are "
                    "dropped until it catches up, and stats() counts spans_dropped",
                    self.max_queue_size,
                )
            return
        self._batch.on_end(span)

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._batch.force_flush(timeout_millis))

    def __repr__(self) -> str:
        return f"<CountingProcessor {self.stats.as_dict()}>"
