"""Pure scheduling: readiness, failure and skip propagation, abort; checked on random DAGs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptrun.workflows.schedule import Schedule, Settled, Status


def diamond() -> Schedule:
    #   a -> b -> d
    #   a -> c -> d      e (independent)
    return Schedule({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []})


def test_ready_nodes_are_those_whose_dependencies_all_succeeded_in_definition_order() -> None:
    s = diamond()
    assert s.ready() == ["a", "e"]
    s.start("a")
    s.start("e")
    assert s.ready() == []
    assert s.succeed("a") == []
    assert s.ready() == ["b", "c"]
    s.start("b")
    s.start("c")
    s.succeed("b")
    assert s.ready() == []  # d still waits for c
    s.succeed("c")
    assert s.ready() == ["d"]


def test_a_failure_fails_everything_downstream_naming_the_node_that_failed() -> None:
    s = diamond()
    s.start("a")
    s.start("e")
    settled = s.fail("a")
    assert settled == [
        Settled("b", Status.FAILED, "not run: upstream node 'a' failed"),
        Settled("c", Status.FAILED, "not run: upstream node 'a' failed"),
        Settled("d", Status.FAILED, "not run: upstream node 'a' failed"),
    ]
    assert s.status("e") is Status.RUNNING  # independent work carries on
    assert not s.finished
    s.succeed("e")
    assert s.finished


def test_a_conditional_skips_the_branch_not_taken_and_what_depends_on_it() -> None:
    s = Schedule(
        {"check": [], "yes": ["check"], "no": ["check"], "after_no": ["no"], "after_yes": ["yes"]},
        {"check": (["yes"], ["no"])},
    )
    s.start("check")
    settled = s.succeed("check", branch=True)
    assert settled == [
        Settled(
            "no",
            Status.SKIPPED,
            "skipped: conditional 'check' was true, and this node is on its false branch",
        ),
        Settled("after_no", Status.SKIPPED, "skipped: upstream node 'no' was skipped"),
    ]
    assert s.ready() == ["yes"]


def test_a_conditional_must_say_which_way_it_went() -> None:
    s = Schedule({"check": [], "x": ["check"]}, {"check": (["x"], [])})
    s.start("check")
    with pytest.raises(ValueError, match="without choosing a branch"):
        s.succeed("check")


def test_abort_skips_every_waiting_node_and_leaves_running_ones_to_the_caller() -> None:
    s = diamond()
    s.start("a")
    settled = s.abort("not run: the workflow timed out")
    assert [x.name for x in settled] == ["b", "c", "d", "e"]
    assert {x.status for x in settled} == {Status.SKIPPED}
    assert s.running == ["a"]
    s.fail("a")
    assert s.finished


def test_a_node_cannot_start_before_its_dependencies_or_finish_twice() -> None:
    s = diamond()
    with pytest.raises(ValueError, match="not ready"):
        s.start("b")
    s.start("a")
    s.succeed("a")
    with pytest.raises(ValueError, match="not running"):
        s.succeed("a")


def test_unknown_dependencies_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown node 'ghost'"):
        Schedule({"a": ["ghost"]})


@st.composite
def runs(
    draw: st.DrawFn,
) -> tuple[dict[str, list[str]], dict[str, tuple[list[str], list[str]]], list[int]]:
    size = draw(st.integers(1, 14))
    names = [f"n{i}" for i in range(size)]
    deps = {
        names[i]: sorted({names[d] for d in draw(st.sets(st.integers(0, i - 1), max_size=3))})
        if i
        else []
        for i in range(size)
    }
    branches: dict[str, tuple[list[str], list[str]]] = {}
    for i in range(size - 1):
        if draw(st.booleans()) and draw(st.booleans()):
            later = names[i + 1 :]
            picked = draw(st.lists(st.sampled_from(later), unique=True, max_size=4))
            cut = draw(st.integers(0, len(picked)))
            branches[names[i]] = (picked[:cut], picked[cut:])
            for target in picked:
                deps[target] = sorted({*deps[target], names[i]})
    # outcome per node: 0 succeed (branch True), 1 succeed (branch False), 2 fail
    outcomes = draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
    return deps, branches, outcomes


@given(runs())
def test_every_run_ends_with_every_node_settled_and_the_rules_kept(
    run: tuple[dict[str, list[str]], dict[str, tuple[list[str], list[str]]], list[int]],
) -> None:
    deps, branches, outcomes = run
    s = Schedule(deps, branches)
    started: list[str] = []
    reasons: dict[str, str] = {}
    while not s.finished:
        ready = s.ready()
        assert ready or s.running, "stuck: nothing ready and nothing running"
        for name in ready:
            assert all(s.status(d) is Status.SUCCESS for d in deps[name])
            s.start(name)
            started.append(name)
        for name in list(s.running):
            outcome = outcomes[int(name[1:])]
            if outcome == 2:
                settled = s.fail(name)
            else:
                settled = s.succeed(name, outcome == 0 if name in branches else None)
            for item in settled:
                assert item.name not in started
                reasons[item.name] = item.reason
    for name, node_deps in deps.items():
        status = s.status(name)
        if status is Status.SUCCESS:
            assert all(s.status(d) is Status.SUCCESS for d in node_deps)
        elif name not in started:
            assert status in (Status.FAILED, Status.SKIPPED)
            assert reasons[name]
            # a node that never ran had a dependency that did not succeed, or lost a branch
            lost_branch = any(
                name in (t if outcomes[int(c[1:])] == 1 else f)
                for c, (t, f) in branches.items()
                if s.status(c) is Status.SUCCESS
            )
            assert lost_branch or any(s.status(d) is not Status.SUCCESS for d in node_deps)
