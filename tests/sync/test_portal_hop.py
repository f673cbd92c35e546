"""The one hop from a caller's thread into the portal's loop (promptrun._portal.call)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading

import pytest

from promptrun import _portal

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


async def loop_thread_and_context() -> tuple[int, str]:
    await asyncio.sleep(0)
    return threading.get_ident(), who.get()


def test_a_coroutine_runs_in_the_portal_thread_with_the_callers_context_variables() -> None:
    who.set("caller")
    thread, seen = _portal.call(loop_thread_and_context)
    assert thread != threading.get_ident()
    assert seen == "caller"


def test_a_plain_function_is_called_in_the_loop_and_its_result_returned() -> None:
    assert _portal.call(lambda a, b: a + b, 2, 3) == 5


class Refused(Exception):
    pass


async def refuse(message: str) -> None:
    await asyncio.sleep(0)
    raise Refused(message)


def test_an_exception_in_the_loop_reaches_the_caller_unchanged() -> None:
    with pytest.raises(Refused, match="no thanks"):
        _portal.call(refuse, "no thanks")


def test_a_call_from_the_portal_thread_itself_is_refused_instead_of_deadlocking() -> None:
    async def nested() -> None:
        _portal.call(loop_thread_and_context)

    with pytest.raises(RuntimeError, match="event loop thread"):
        _portal.call(nested)


def test_a_call_cancelled_in_the_loop_raises_cancelled_in_the_caller() -> None:
    async def cancelled() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    with pytest.raises(concurrent.futures.CancelledError):
        _portal.call(cancelled)
