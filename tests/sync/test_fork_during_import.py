"""fork() while another thread imports or builds a model: the child gets whole ones.

A first run imports what running needs (the pipeline, aiohttp, a provider SDK) and builds the
SDK's pydantic models; a fork from another thread in the middle of that would leave the child
with half-initialised modules and locks held by a thread it does not have. promptrun's at-fork
hook makes the fork wait for them (promptrun/_before_fork.py). The imports and builds here are
held by events; the hook's DEBUG records ("waiting for ...") say when the fork is waiting.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pydantic
import pytest
from pydantic_core import core_schema

from promptrun import _before_fork

from .._clients import Probe

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

WAITING = "fork(): waiting for"


class Gate:
    """A module whose top level, in a thread, signals ``entered`` and waits for ``release``."""

    def __init__(self, folder: Path, body: str = "") -> None:
        self.name = f"promptrun_test_slow_{uuid.uuid4().hex}"
        self.entered = threading.Event()
        self.release = threading.Event()
        gate = types.ModuleType(self.name + "_gate")
        gate.entered, gate.release = self.entered, self.release  # type: ignore[attr-defined]
        sys.modules[gate.__name__] = gate
        (folder / f"{self.name}.py").write_text(
            f"import {gate.__name__} as gate\n"
            "gate.entered.set()\n"
            "gate.release.wait()\n" + textwrap.dedent(body) + "VALUE = 42\n"
        )
        self.thread = threading.Thread(target=__import__, args=(self.name,), daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.entered.wait()

    def finish(self) -> None:
        self.release.set()
        self.thread.join()
        sys.modules.pop(self.name + "_gate", None)
        sys.modules.pop(self.name, None)


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))


@pytest.fixture
def when_the_fork_waits() -> Iterator[Callable[[Callable[[], None]], None]]:
    """Calls a function when the at-fork hook says it is waiting for an import."""
    logger = logging.getLogger("promptlayer")
    handlers: list[logging.Handler] = []

    class Handler(logging.Handler):
        def __init__(self, action: Callable[[], None]) -> None:
            super().__init__(logging.DEBUG)
            self.action = action

        def emit(self, record: logging.LogRecord) -> None:
            if WAITING in record.getMessage():
                self.action()

    def install(action: Callable[[], None]) -> None:
        handler = Handler(action)
        handlers.append(handler)
        logger.addHandler(handler)

    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield install
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


def wait_for_child(pid: int) -> int:
    """The child's exit code; a child still running after a minute is killed (it hung)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


def test_a_fork_waits_until_another_threads_import_has_finished(
    on_path: Path, when_the_fork_waits: Callable[[Callable[[], None]], None]
) -> None:
    gate = Gate(on_path)
    gate.start()  # the thread is inside the module's top level, holding its import lock
    # The import may finish only once the fork is waiting for it: without the hook it would
    # still be under way when the child is made.
    when_the_fork_waits(gate.release.set)
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            module = sys.modules.get(gate.name)
            whole = getattr(module, "VALUE", None) == 42
            settled = whole and not getattr(module.__spec__, "_initializing", True)
            # Its import lock is free in the child too (asked only then: else it would hang).
            code = 0 if settled and __import__(gate.name) is module else 1
        finally:
            os._exit(code)
    gate.finish()
    assert wait_for_child(pid) == 0


def test_a_fork_from_a_modules_top_level_does_not_wait_for_its_own_import(
    on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waiting for its own import would hold this fork for good (the bound is lifted here).
    monkeypatch.setattr(_before_fork, "WAIT_LIMIT", 3600.0)
    gate = Gate(
        on_path,
        """
        import os
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        CHILD = pid
        """,
    )
    gate.release.set()
    gate.start()
    gate.thread.join()
    child = sys.modules[gate.name].CHILD
    gate.finish()
    assert wait_for_child(child) == 0


def test_an_import_that_waits_for_the_fork_holds_it_only_up_to_the_bound(
    on_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when_the_fork_waits: Callable[[Callable[[], None]], None],
) -> None:
    monkeypatch.setattr(_before_fork, "WAIT_LIMIT", 0.05)
    gate = Gate(on_path)
    gate.start()
    waited: list[bool] = []
    when_the_fork_waits(lambda: waited.append(True))
    pid = os.fork()  # the import finishes only after the fork: the fork must not wait for it
    if pid == 0:
        os._exit(0)
    gate.finish()
    assert waited == [True]
    assert wait_for_child(pid) == 0


def test_a_fork_waits_until_another_threads_pydantic_model_build_has_finished(
    when_the_fork_waits: Callable[[Callable[[], None]], None],
) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow:
        @classmethod
        def __get_pydantic_core_schema__(cls, source: object, handler: object) -> object:
            entered.set()
            release.wait()
            return core_schema.int_schema()

    class Model(pydantic.BaseModel):
        # Built on first use, under pydantic's process-wide build lock, as the SDKs' models are.
        model_config = pydantic.ConfigDict(defer_build=True)
        x: Slow

    first = threading.Thread(target=Model.model_validate, args=({"x": 1},), daemon=True)
    first.start()
    entered.wait()
    when_the_fork_waits(release.set)
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            built = Model.__pydantic_complete__
            # Another model's build takes the same lock: free in the child (asked only then).
            code = 0 if built and Model.model_validate({"x": 2}).x == 2 else 1
        finally:
            os._exit(code)
    release.set()
    first.join()
    assert wait_for_child(pid) == 0


# The repro of the bug: a fresh interpreter, a thread in its first run(), a fork from the main
# thread. The thread's import of aiohttp (which the first run needs) is held half way by a
# meta-path finder until the fork is waiting for it; the child then runs and logs.
FORK_IN_FIRST_RUN = """
    import importlib.machinery, logging, os, sys, threading, time

    entered, release = threading.Event(), threading.Event()

    class Hold(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name != "aiohttp" or entered.is_set():
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
            run = spec.loader.exec_module
            def exec_module(module):
                entered.set()
                release.wait()
                run(module)
            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hold)

    class WhenForkWaits(logging.Handler):
        def emit(self, record):
            if "waiting for imports in progress" in record.getMessage():
                release.set()

    log = logging.getLogger("promptlayer")
    log.setLevel(logging.DEBUG)
    log.addHandler(WhenForkWaits())

    from promptrun import PromptLayer
    assert "aiohttp" not in sys.modules
    VARS = {"name": "A", "topic": "t"}
    pl = PromptLayer()
    first = threading.Thread(target=pl.run, args=("greet",),
                             kwargs={"input_variables": VARS, "metadata": {"who": "parent"}})
    first.start()
    entered.wait()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            pl.run("greet", input_variables=VARS, metadata={"who": "child-run"})
            pl.log_request(provider="openai", model="m",
                           input={"type": "chat", "messages": []},
                           output={"type": "chat", "messages": []},
                           request_start_time=time.time(), request_end_time=time.time(),
                           metadata={"who": "child-log"})
            code = 0 if pl.flush(30) else 2
        finally:
            os._exit(code)
    release.set()  # without the hook: let the parent's import finish after the fork
    first.join()
    deadline = time.monotonic() + 50
    while not (status := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    if not status[0]:
        os.kill(pid, 9)
        sys.exit("the child hung")
    print("child", os.waitstatus_to_exitcode(status[1]), "parent", pl.flush(30))
"""


def test_a_child_forked_during_another_threads_first_run_runs_and_logs_each_record_once(
    run_script: Callable[[str], subprocess.CompletedProcess[str]], probe: Probe
) -> None:
    anyio.run(probe.publish, "greet")
    done = run_script(FORK_IN_FIRST_RUN)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["child", "0", "parent", "True"], done.stderr
    assert done.stderr == ""  # no "Exception ignored" from another module's at-fork hooks
    rows = anyio.run(probe.requests)
    assert sorted(row["metadata"]["who"] for row in rows) == ["child-log", "child-run", "parent"]
    assert len({row["client_request_id"] for row in rows}) == 3
