"""Client-side OpenTelemetry tracing: ``enable_tracing=True`` and ``traceable``.

Nothing here imports OpenTelemetry at import time: a client with tracing off never loads it.
With tracing on, :class:`~promptrun.tracing._setup.ClientTracing` (one per client) chooses the
tracer provider and adds promptrun's exporter to it, and the run pipeline's ends are wrapped
so that each stage makes its span (:mod:`promptrun.tracing._pipeline`):

- ``PromptLayer Run``: one ``run()``, from its validation to its log record (for a stream,
  to its last chunk); the record's ``span_id`` names it, so the logged request links to it.
- ``Prompt template fetch``: the template stage, with ``promptrun.template.cache`` (``hit``,
  ``miss``, ``expired``, ``stale`` or ``refreshing``).
- ``chat {model}`` (kind CLIENT): the provider call, with the GenAI semantic conventions'
  attributes (``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.usage.*``,
  ``gen_ai.response.finish_reasons``, ...).
- ``Workflow {name}`` and one ``Workflow node {name}`` per node of a local workflow; for a
  server workflow the span goes to the server as a W3C ``traceparent``, and the server records
  the execution and its nodes under it (:mod:`promptrun.server._execution_trace`).
- ``promptrun log batch``: each batch the log shipper ships, a trace of its own.

Which provider: ``tracer_provider=`` if given; else the global one when the application
configured an OpenTelemetry SDK ``TracerProvider`` (promptrun's spans then join the
application's traces and its exporters); else a provider of promptrun's own (service name
``OTEL_SERVICE_NAME`` or ``promptrun``). In each case promptrun adds one bounded
``BatchSpanProcessor`` with the OTLP/HTTP exporter, to ``{base_url}/v1/traces`` (or
``PROMPTLAYER_OTLP_TRACES_ENDPOINT``) with the API key in ``X-Api-Key``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from promptrun._config import ClientConfig
    from promptrun.tracing._setup import ClientTracing

__all__ = ["F", "start_tracing", "traceable"]

F = TypeVar("F", bound=Callable[..., Any])


def start_tracing(config: ClientConfig, tracer_provider: Any, providers: Any) -> ClientTracing:
    """A client's tracing (``enable_tracing=True``); the first import of OpenTelemetry."""
    try:
        from promptrun.tracing._setup import ClientTracing
    except ImportError as exc:
        raise ImportError(
            f"enable_tracing=True needs OpenTelemetry ({exc}): pip install 'promptrun[tracing]'"
        ) from exc
    return ClientTracing(config.api_key, config.base_url, tracer_provider, providers)


def traceable(
    tracing: ClientTracing | None, attributes: dict[str, Any] | None, name: str | None
) -> Callable[[F], F]:
    """``pl.traceable(...)``: a span per call with tracing on, the function itself without."""
    if tracing is None:
        return _unchanged
    from promptrun.tracing._traceable import traceable as traced

    return traced(tracing.tracer, attributes, name)


def _unchanged(func: F) -> F:
    return func
