"""The workflow graph's layout, on plain definitions."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from promptrun.server.dashboard._graph import NODE_H, NODE_W, workflow_graph


def code(name: str, *reads: str, output: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "type": "code",
        "configuration": {"code": "return 1"},
        "inputs": {r: r for r in reads},
        "is_output_node": output,
    }


def test_each_node_sits_one_layer_after_the_latest_node_it_reads() -> None:
    graph = workflow_graph({"nodes": [code("a"), code("b", "a"), code("c", "a", "b")]})
    assert graph is not None
    x = {n.name: n.x for n in graph.nodes}
    assert x["a"] < x["b"] < x["c"]
    assert {(e.source, e.target) for e in graph.edges} == {("a", "b"), ("a", "c"), ("b", "c")}


def test_an_edge_that_skips_a_layer_bends_around_the_nodes_between() -> None:
    graph = workflow_graph({"nodes": [code("a"), code("b", "a"), code("c", "a", "b")]})
    assert graph is not None
    long = next(e for e in graph.edges if (e.source, e.target) == ("a", "c"))
    short = next(e for e in graph.edges if (e.source, e.target) == ("a", "b"))
    assert long.path.count("C") == 3  # into the waypoint, across it, out of it
    assert short.path.count("C") == 1
    b = next(n for n in graph.nodes if n.name == "b")
    waypoint_y = float(long.path.split("C")[2].split()[-1].split(",")[1])
    assert not b.y <= waypoint_y <= b.y + NODE_H  # it does not run through b


def test_independent_branches_share_a_column_without_overlapping() -> None:
    graph = workflow_graph({"nodes": [code("a"), code("b", "a"), code("c", "a"), code("d", "a")]})
    assert graph is not None
    column = sorted(n.y for n in graph.nodes if n.name in "bcd")
    assert len({n.x for n in graph.nodes if n.name in "bcd"}) == 1
    assert all(later - earlier >= NODE_H for earlier, later in itertools.pairwise(column))


def test_conditional_branches_are_labelled_and_statuses_and_outputs_are_kept() -> None:
    definition = {
        "nodes": [
            code("size"),
            {"name": "check", "type": "conditional", "inputs": {"size": "size"},
             "configuration": {"expression": "size > 1", "if_true": ["yes"],
                               "if_false": ["no"]}},
            code("yes", output=True),
            code("no", output=True),
        ]
    }  # fmt: skip
    graph = workflow_graph(definition, {"size": "SUCCESS", "yes": "SUCCESS", "no": "SKIPPED"})
    assert graph is not None
    labels = {(e.source, e.target): e.label for e in graph.edges}
    assert labels == {("size", "check"): "", ("check", "yes"): "true", ("check", "no"): "false"}
    nodes = {n.name: n for n in graph.nodes}
    assert (nodes["yes"].status, nodes["no"].status, nodes["check"].status) == (
        "SUCCESS",
        "SKIPPED",
        None,
    )
    assert {n.name for n in graph.nodes if n.output} == {"yes", "no"}


def test_a_definition_that_no_longer_parses_is_not_drawn() -> None:
    assert workflow_graph({"nodes": [{"name": "a", "type": "llm"}]}) is None
    assert workflow_graph("not json") is None


def test_a_long_name_is_shortened_in_its_box_and_kept_whole_in_its_title() -> None:
    graph = workflow_graph({"nodes": [code("a_very_long_node_name_that_does_not_fit")]})
    assert graph is not None
    node = graph.nodes[0]
    assert node.name == "a_very_long_node_name_that_does_not_fit"
    assert node.label.endswith("…") and len(node.label) <= 22


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 12))
    nodes = []
    for i in range(count):
        reads = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        nodes.append(code(f"n{i}", *(f"n{r}" for r in sorted(reads))))
    return {"nodes": nodes}


@settings(max_examples=60, deadline=None)
@given(dags())
def test_any_dag_is_laid_out_with_no_overlaps_inside_the_picture(
    definition: dict[str, Any],
) -> None:
    graph = workflow_graph(definition)
    assert graph is not None
    boxes = [(n.x, n.y) for n in graph.nodes]
    assert len(set(boxes)) == len(boxes)
    for x, y in boxes:
        assert x >= 0 and x + NODE_W <= graph.width
        assert y >= 0 and y + NODE_H <= graph.height
    x = {n.name: n.x for n in graph.nodes}
    for edge in graph.edges:
        assert x[edge.source] < x[edge.target]  # values flow left to right
