"""Short tracebacks: a PromptLayer-side error leaves a public method with its inside cut off.

Without this, a 404 from ``templates.get()`` reaches the caller through 20 to 35 frames of
anyio's portal, stamina, tenacity, the template cache and the HTTP edge, none of which the
caller can act on. :func:`public` wraps a public method so that a :class:`PromptLayerError`
leaving it shows the caller's frames, that method's frame, and the exception (whose message
already says what was being done); a chained cause (the aiohttp error behind a connection
error) keeps only the frame that raised it.

The wrapper itself does not show: it trims the traceback to the method's frame and re-raises
with a bare ``raise``, which adds no frame of its own. Errors from a provider's SDK are not
PromptLayer errors and keep their whole traceback.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from promptrun._errors import PromptLayerError

__all__ = ["public", "trim"]

P = ParamSpec("P")
R = TypeVar("R")


def _last(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def trim(exc: BaseException) -> None:
    """Cut ``exc``'s traceback after its second entry (the public method called by the
    wrapper that caught it), and its causes' to the frame that raised them."""
    tb = exc.__traceback__
    method = tb.tb_next if tb is not None else None
    if method is not None:
        method.tb_next = None
        exc.__traceback__ = method
    seen = {id(exc)}
    cause = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        cause.__traceback__ = _last(cause.__traceback__)
        cause = cause.__cause__ if cause.__cause__ is not None else cause.__context__


@overload
def public(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def public(fn: Callable[P, R]) -> Callable[P, R]: ...
def public(fn: Callable[P, Any]) -> Callable[P, Any]:
    """Wrap a public method (sync or async) so its PromptLayer errors carry short tracebacks."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def call_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return await fn(*args, **kwargs)
            except PromptLayerError as exc:
                trim(exc)
                raise  # bare: adds no frame for this wrapper

        return call_async

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            return fn(*args, **kwargs)
        except PromptLayerError as exc:
            trim(exc)
            raise  # bare: adds no frame for this wrapper

    return call
