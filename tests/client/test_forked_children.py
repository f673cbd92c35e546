"""A script whose forked children log and end without shipping (multiprocessing's workers,
ended by SIGTERM when the pool closes; ``os.fork()`` children ending with ``os._exit``): their
records are on the server once, each, when the parent's client closes or the script exits."""

from __future__ import annotations

import os

import anyio
import pytest

from .._clients import Probe
from ._scripts import assert_clean_exit_and_stored, delivered, run_script

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

# Children that log one record each and end at once through os._exit: no exit hook runs, and
# the record is still in the child's spool segment (a batch waits 50 ms for more).
FORKED = """
import os
from promptrun import PromptLayer
pl = PromptLayer()
def fork_children(n, first=1):
    pids = []
    for i in range(first, first + n):
        pid = os.fork()
        if pid == 0:
            pl.log_request(*log_args(i))
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
"""


def test_pool_workers_ended_by_the_pools_exit_have_their_runs_on_the_server_when_the_script_ends(
    script_env: dict[str, str], probe: Probe
) -> None:
    anyio.run(probe.publish, "greet")
    script = """
import multiprocessing as mp
from promptrun import PromptLayer
pl = PromptLayer()
def work(i):
    return pl.run("greet", input_variables={"name": f"child{i}", "topic": "t"})["request_id"]
ids = [pl.run("greet", input_variables={"name": "parent", "topic": "t"})["request_id"]]
with mp.get_context("fork").Pool(3) as pool:  # __exit__ ends the workers with SIGTERM
    ids += pool.map(work, range(6))
print(" ".join(ids))
"""
    proc = run_script(script_env, script)
    assert_clean_exit_and_stored(proc, probe, script_env, 7)
    rows = anyio.run(probe.requests)
    assert {r["client_request_id"] for r in rows} == set(proc.stdout.split())


def test_pool_workers_of_a_parent_that_never_logs_itself_have_their_records_on_the_server(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import multiprocessing as mp
from promptrun import PromptLayer
pl = PromptLayer()
def work(i):
    pl.log_request(*log_args(i))
with mp.get_context("fork").Pool(3) as pool:
    pool.map(work, range(6))
"""
    delivered(script_env, probe, script, 6)


def test_forked_children_ending_with_os_exit_have_their_records_on_the_server_at_exit(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
pl.log_request(*log_args(0))
fork_children(3)
"""
    delivered(script_env, probe, FORKED + script, 4)


def test_forked_childrens_records_are_on_the_server_once_the_parents_client_is_closed(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
pl.log_request(*log_args(0))
fork_children(3)
pl.close()
print(stored_now())
"""
    delivered(script_env, probe, FORKED + script, 4, prints="4")


def test_closing_a_client_only_its_forked_children_used_ships_their_records(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
fork_children(3)
pl.close()
print(stored_now())
"""
    delivered(script_env, probe, FORKED + script, 3, prints="3")


def test_a_child_still_running_when_the_parent_closes_keeps_its_records_and_ships_them_itself(
    script_env: dict[str, str], probe: Probe
) -> None:
    # The child's event loop is blocked until the parent has closed: its record waits in its
    # segment meanwhile, which the parent must leave alone.
    script = """
import asyncio
from promptrun import AsyncPromptLayer
pl.log_request(*log_args(0))
logged_r, logged_w = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    async def child():
        apl = AsyncPromptLayer()
        await apl.log_request(*log_args(1))
        os.write(logged_w, b"1")
        os.read(go_r, 1)  # blocks the loop, so the record cannot ship yet
        await apl.aclose()
    asyncio.run(child())
    os._exit(0)
os.read(logged_r, 1)
pl.close()
print(stored_now())  # the parent's record only
os.write(go_w, b"1")
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
"""
    delivered(script_env, probe, FORKED + script, 2, prints="1")


def test_a_script_that_ends_before_its_child_leaves_the_childs_records_to_it(
    script_env: dict[str, str], probe: Probe
) -> None:
    # The parent exits while its child still runs: its exit neither waits for the child nor
    # takes its records, and the child ships them when it closes. (The script's output ends
    # when the child's does, so the test waits for both.)
    script = """
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    pl.log_request(*log_args(1))
    os.read(r, 1)  # until the parent has exited (its end of the pipe closes)
    pl.close()
    os._exit(0)
os.close(r)
pl.log_request(*log_args(0))
"""
    delivered(script_env, probe, FORKED + script, 2)
