"""``pl.traceable(attributes=None, name=None)``: a span per call of the decorated function.

Like the peer SDK's: the span is named ``name`` or the function's ``__name__``, carries the
given attributes, ``function_input`` (``str({"args": ..., "kwargs": ...})``) and
``function_output`` (``str(result)``), each cut to :data:`MAX_ATTRIBUTE_CHARS` characters,
and records an exception (``error.type``, the ``exception`` event, status ERROR) before it
propagates. Functions, coroutine functions, generators and async generators are decorated;
a generator's span lasts from its first step to its end, and is current only while the
generator runs (never while its consumer does). The span is current inside the call, so
spans started there (``run()``, other traced functions, after any ``await``) are its
children. A thread started inside needs the context handed over: ``asyncio.to_thread`` does
it; for ``threading.Thread`` or an executor, run the target with
``contextvars.copy_context().run``.

With tracing off the decorator returns the function itself: no wrapper, no cost.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from promptrun.tracing._pipeline import record_error

__all__ = ["MAX_ATTRIBUTE_CHARS", "traceable"]

MAX_ATTRIBUTE_CHARS = 4096
F = TypeVar("F", bound=Callable[..., Any])


def fit(value: Any) -> str:
    """``str(value)``, cut to :data:`MAX_ATTRIBUTE_CHARS` (saying how long it was)."""
    try:
        text = str(value)
    except Exception as exc:  # a broken __str__ must not fail the traced call
        text = f"<unprintable {type(value).__name__}: {exc!r}>"
    if len(text) > MAX_ATTRIBUTE_CHARS:
        return f"{text[:MAX_ATTRIBUTE_CHARS]}... ({len(text)} characters in all)"
    return text


@contextlib.contextmanager
def _recorded(span: trace.Span) -> Iterator[None]:
    """Record an exception on ``span`` (not a generator's close) and let it propagate."""
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):
            record_error(span, exc)
        raise


@contextlib.contextmanager
def _current(span: trace.Span) -> Iterator[None]:
    """``span`` current for a call, recording its exception, ended after it."""
    with (
        trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ),
        _recorded(span),
    ):
        yield


def traceable(
    tracer: trace.Tracer, attributes: Mapping[str, Any] | None, name: str | None
) -> Callable[[F], F]:
    fixed = dict(attributes or {})

    def decorate(func: F) -> F:
        span_name = name or getattr(func, "__name__", None) or "traced"

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> trace.Span:
            span = tracer.start_span(span_name, attributes=fixed)
            span.set_attribute("function_input", fit({"args": args, "kwargs": kwargs}))
            return span

        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
                span = start(args, kwargs)
                ctx = trace.set_span_in_context(span)
                gen = func(*args, **kwargs)
                count, sent = 0, None
                try:
                    with _recorded(span):
                        while True:
                            token = otel_context.attach(ctx)
                            try:
                                item = await gen.asend(sent)
                            except StopAsyncIteration:
                                break
                            finally:
                                otel_context.detach(token)
                            count += 1
                            sent = yield item
                finally:
                    token = otel_context.attach(ctx)
                    try:
                        await gen.aclose()
                    finally:
                        otel_context.detach(token)
                        span.set_attribute("function_output", f"{count} items")
                        span.end()

            return agen_wrapper  # type: ignore[return-value]  # same signature as func

        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                span = start(args, kwargs)
                ctx = trace.set_span_in_context(span)
                gen = func(*args, **kwargs)
                count, sent, value = 0, None, None
                try:
                    with _recorded(span):
                        while True:
                            token = otel_context.attach(ctx)
                            try:
                                item = gen.send(sent)
                            except StopIteration as stop:
                                value = stop.value
                                break
                            finally:
                                otel_context.detach(token)
                            count += 1
                            sent = yield item
                finally:
                    token = otel_context.attach(ctx)
                    try:
                        gen.close()
                    finally:
                        otel_context.detach(token)
                        span.set_attribute("function_output", f"{count} items")
                        span.end()
                return value

            return gen_wrapper  # type: ignore[return-value]  # same signature as func

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                span = start(args, kwargs)
                with _current(span):
                    result = await func(*args, **kwargs)
                    span.set_attribute("function_output", fit(result))
                    return result

            return async_wrapper  # type: ignore[return-value]  # same signature as func

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start(args, kwargs)
            with _current(span):
                result = func(*args, **kwargs)
                span.set_attribute("function_output", fit(result))
                return result

        return sync_wrapper  # type: ignore[return-value]  # same signature as func

    return decorate
