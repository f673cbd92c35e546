"""A sync run interrupted (Ctrl-C) while its provider call is in flight is logged once.

The KeyboardInterrupt reaches the caller once the run has wound down and its record is handed
over, so a script that ends on Ctrl-C still ships it. The sandbox provider holds the request
(``hang``); a helper thread sends SIGINT to the main thread once the sandbox has counted it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator

import anyio
import pytest

from promptrun import PromptLayer

from .._clients import Probe

VARS = {"name": "Ada", "topic": "engines"}


async def until_the_provider_has_the_request(probe: Probe) -> None:
    while (await probe.sandbox_stats())["stats"]["total"] < 1:  # noqa: ASYNC110 - the server says
        await anyio.sleep(0.01)


@pytest.fixture
def interrupt_when_sent(probe: Probe) -> Iterator[Callable[[], None]]:
    """Starts a thread that interrupts the main thread once the provider has the request."""
    assert threading.current_thread() is threading.main_thread()
    main = threading.get_ident()
    # A test run started in the background ignores SIGINT: Python's own handler for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threads: list[threading.Thread] = []

    def interrupt() -> None:
        anyio.run(until_the_provider_has_the_request, probe)
        signal.pthread_kill(main, signal.SIGINT)

    def start() -> None:
        thread = threading.Thread(target=interrupt)
        threads.append(thread)
        thread.start()

    yield start
    for thread in threads:
        thread.join()
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_sync_run_interrupted_while_the_provider_call_is_in_flight_is_logged_once(
    make_sync: Callable[..., PromptLayer],
    probe: Probe,
    interrupt_when_sent: Callable[[], None],
    stream: bool,
) -> None:
    anyio.run(probe.publish, "greet")
    anyio.run(lambda: probe.sandbox(fail=[{"hang": True, "provider": "openai"}]))
    pl = make_sync()
    interrupt_when_sent()
    with pytest.raises(KeyboardInterrupt):
        pl.run("greet", input_variables=VARS, stream=stream, metadata={"case": "interrupted"})
    assert pl.stats()["queued"] == 1  # handed over before the interrupt reached the caller
    assert pl.flush(timeout=10)
    [row] = anyio.run(probe.requests)
    assert row["status"] == "WARNING"
    assert "cancelled by the caller" in row["error_message"]
    assert row["metadata"] == {"case": "interrupted"}
