"""PromptLayer (sync): the async runtime driven from the portal thread, in every kind of process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import openai
import pytest

from promptrun import PromptLayer, PromptLayerNotFoundError

from .._clients import Probe, spooled

VARS = {"name": "Ada", "topic": "engines"}


def stored(probe: Probe) -> list[dict]:
    return anyio.run(probe.requests)


def publish(probe: Probe, *names: str) -> None:
    anyio.run(probe.publish, *names)


def text_of(item: dict) -> str:
    message = item["prompt_blueprint"]["prompt_template"]["messages"][-1]
    return "".join(p.get("text", "") for p in message["content"])


def test_sync_run_returns_the_same_result_as_the_async_client(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    publish(probe, "greet")
    pl = make_sync()
    result = pl.run("greet", input_variables=VARS, tags=["sync"])
    assert isinstance(result["raw_response"], openai.types.chat.ChatCompletion)
    assert result["request_id"].startswith("req_")
    assert pl.flush(timeout=10)
    [row] = stored(probe)
    assert row["client_request_id"] == result["request_id"]
    assert row["tags"] == ["sync"]


def test_sync_stream_yields_chunks_as_they_arrive_and_a_final_request_id(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    publish(probe, "greet")
    anyio.run(lambda: probe.sandbox(chunks=3, chunk_delay_ms=500))
    pl = make_sync()
    items = []
    logged_at_first = None
    for item in pl.run("greet", input_variables=VARS, stream=True):
        if not items:  # the run is logged at the stream's end: not yet, so not buffered
            logged_at_first = pl.stats()["queued"]
        items.append(item)
    assert logged_at_first == 0
    assert pl.stats()["queued"] == 1
    assert items[-1]["request_id"].startswith("req_")
    assert all(i["request_id"] is None for i in items[:-1])
    assert text_of(items[-1]) == text_of(items[-2])


def test_breaking_out_of_a_sync_stream_closes_it_and_logs_it(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    publish(probe, "greet")
    anyio.run(lambda: probe.sandbox(chunks=30, chunk_delay_ms=20))
    pl = make_sync()
    for _ in pl.run("greet", input_variables=VARS, stream=True):
        break
    assert pl.flush(timeout=10)
    [row] = stored(probe)
    assert row["status"] == "WARNING"


@pytest.mark.parametrize("client", ["PromptLayer()", "with"])
@pytest.mark.parametrize("where", ["in the loop body", "waiting for a chunk"])
def test_ctrl_c_in_a_sync_stream_ends_the_script_and_logs_the_run_as_cut_short(
    run_script: Callable[..., subprocess.CompletedProcess[str]],
    probe: Probe,
    client: str,
    where: str,
) -> None:
    publish(probe, "greet")
    anyio.run(lambda: probe.sandbox(chunks=40, chunk_delay_ms=200))
    # Ctrl-C is a SIGINT to the process: raised in the loop's body, or (from another thread,
    # once the first chunk is in) while the iterator waits for the next chunk.
    interrupt = (
        "os.kill(os.getpid(), signal.SIGINT)"
        if where == "in the loop body"
        else "n == 1 and threading.Thread(target=interrupt_when_waiting, daemon=True).start()"
    )
    opening = (
        "pl = PromptLayer()\n" if client == "PromptLayer()" else "with PromptLayer() as pl:\n "
    )
    script = (
        "import os, signal, sys, threading, time\n"
        "from promptrun import PromptLayer\n"
        "main = threading.get_ident()\n"
        "def interrupt_when_waiting():\n"
        "    while sys._current_frames()[main].f_code.co_name != '__next__':\n"
        "        time.sleep(0.001)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        + opening
        + "for n, chunk in enumerate(pl.run('greet', input_variables={'name': 'A', 'topic': 'b'}, stream=True), 1):\n"
        + ("  " if client == "with" else " ")
        + f" print('chunk', flush=True); {interrupt}\n"
    )
    proc = run_script(script, timeout=30)  # the timeout only guards against a hang
    assert "KeyboardInterrupt" in proc.stderr, proc.stderr
    assert proc.returncode != 0
    rows = stored(probe)
    assert [r["status"] for r in rows] == ["WARNING"], proc.stderr


def test_context_manager_closes_and_ships(env: dict[str, str], probe: Probe) -> None:
    publish(probe, "greet")
    with PromptLayer() as pl:
        for _ in range(3):
            pl.run("greet", input_variables=VARS)
        logged = pl.log_request(
            "openai",
            "gpt-4o",
            {"type": "chat", "messages": []},
            {"type": "chat", "messages": []},
            time.time(),
            time.time(),
        )
    assert logged is not None
    assert len(stored(probe)) == 4
    assert pl.stats()["shipped"] == 4


def test_a_script_that_logs_and_exits_at_once_finds_its_records_on_the_server(
    run_script: Callable[..., object], probe: Probe
) -> None:
    publish(probe, "greet")
    proc = run_script(
        """
        import time
        from promptrun import PromptLayer
        pl = PromptLayer()
        r = pl.run("greet", input_variables={"name": "A", "topic": "b"})
        for i in range(50):
            pl.log_request("openai", "gpt-4o", {"type": "chat", "messages": []},
                           {"type": "chat", "messages": []}, time.time(), time.time())
        print(r["request_id"])
        """
    )
    assert proc.returncode == 0, proc.stderr  # type: ignore[attr-defined]
    assert len(stored(probe)) == 51


def test_one_client_shared_by_many_threads(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    publish(probe, "greet")
    pl = make_sync(cache_ttl_seconds=30)

    def work(i: int) -> str:
        return str(pl.run("greet", input_variables={"name": f"t{i}", "topic": "x"})["request_id"])

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(work, range(64)))
    assert len(set(ids)) == 64
    assert pl.flush(timeout=10)
    assert len(stored(probe)) == 64


def test_many_clients_share_one_portal_thread(make_sync: Callable[..., PromptLayer]) -> None:
    make_sync().stats()
    first = make_sync()
    first.invalidate()
    before = threading.active_count()
    clients = [make_sync() for _ in range(20)]
    for c in clients:
        c.invalidate()
    assert threading.active_count() == before


def test_the_sync_client_works_inside_a_running_event_loop(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    publish(probe, "greet")
    pl = make_sync()

    async def notebook_cell() -> str:
        # A notebook or an async framework calling sync code: it blocks this loop briefly,
        # but runs on the portal's own loop, so it cannot deadlock.
        return str(pl.run("greet", input_variables=VARS)["request_id"])

    assert asyncio.run(notebook_cell()).startswith("req_")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_after_fork_the_child_gets_a_fresh_runtime_and_nothing_ships_twice(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    publish(probe, "greet")
    pl = make_sync()
    pl.run("greet", input_variables=VARS)  # the parent's runtime and portal are running
    pid = os.fork()
    if pid == 0:  # the child: must not hang on the parent's portal thread
        code = 1
        try:
            r = pl.run("greet", input_variables={"name": "child", "topic": "x"})
            pl.close()
            code = 0 if r["request_id"] else 2
        finally:
            os._exit(code)
    deadline = time.time() + 60
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0
    assert pl.flush(timeout=10)
    rows = stored(probe)
    assert len(rows) == 2  # the parent's one and the child's one: none twice
    assert len({r["client_request_id"] for r in rows}) == 2


def test_publish_invalidates_the_cache_so_the_next_run_sees_the_new_version(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    from .._clients import example

    publish(probe, "greet")
    pl = make_sync(cache_ttl_seconds=300)
    assert pl.templates.get("greet")["version"] == 1
    body = example("greet")
    body["commit_message"] = "v2"
    body["metadata"] = {**body.get("metadata", {}), "revision": 2}  # new content, new version
    published = pl.templates.publish(body)
    assert published["version_number"] == 2
    assert pl.templates.get("greet")["version"] == 2


def test_throw_on_error_false_returns_none_with_a_warning(
    make_sync: Callable[..., PromptLayer], caplog: pytest.LogCaptureFixture
) -> None:
    pl = make_sync(throw_on_error=False)
    with caplog.at_level("WARNING", logger="promptlayer"):
        assert pl.templates.get("NonExistentTemplate") is None
    assert any("NonExistentTemplate" in r.getMessage() for r in caplog.records)
    with pytest.raises(PromptLayerNotFoundError):
        pl.run("NonExistentTemplate")


def test_exit_ships_within_its_deadline_and_spools_the_rest_for_the_next_run(
    run_script: Callable[..., object], probe: Probe, env: dict[str, str]
) -> None:
    anyio.run(
        lambda: probe.faults({"path": "/promptrun/v1/ingest", "delay_ms": 60_000, "times": 1})
    )
    proc = run_script(
        """
        import time
        from promptrun import PromptLayer
        pl = PromptLayer(shutdown_timeout=0.5)
        for i in range(20):
            pl.log_request("openai", "gpt-4o", {"type": "chat", "messages": []},
                           {"type": "chat", "messages": []}, time.time(), time.time())
        """,
        timeout=30,  # the 60 s stall must not hold the exit
    )
    assert proc.returncode == 0, proc.stderr  # type: ignore[attr-defined]
    assert spooled(Path(env["PROMPTRUN_SPOOL_DIR"])), "the unshipped records were not spooled"
    anyio.run(probe.clear_faults)
    proc = run_script(
        """
        from promptrun import PromptLayer
        with PromptLayer() as pl:
            assert pl.flush(timeout=10)
        """
    )
    assert proc.returncode == 0, proc.stderr  # type: ignore[attr-defined]
    assert len({r["client_request_id"] for r in stored(probe)}) == 20


def test_sync_track_calls_are_checked_at_once_and_applied_after_their_record(
    make_sync: Callable[..., PromptLayer], probe: Probe
) -> None:
    from promptrun import PromptLayerValidationError

    publish(probe, "greet")
    pl = make_sync()
    rid = pl.run("greet", input_variables=VARS)["request_id"]
    with pytest.raises(PromptLayerValidationError, match="score"):
        pl.track.score(rid, 101)
    assert pl.track.score(rid, 77, "quality")
    assert pl.track.metadata(rid, {"session": "s1"})
    assert pl.flush(timeout=10)
    row = anyio.run(probe.request, rid)
    assert row["scores"]["quality"] == 77
    assert row["metadata"]["session"] == "s1"
