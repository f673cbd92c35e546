"""The definition format: what parses, and the errors that name what is wrong."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptrun.workflows import DefinitionError, parse_definition
from promptrun.workflows.definition import CodeConfig, ConditionalConfig, PromptTemplateConfig

VALID: dict[str, Any] = {
    "input_variables": ["topic", {"name": "tone", "default": "dry"}],
    "timeout": 30,
    "nodes": [
        {
            "name": "draft",
            "type": "prompt_template",
            "configuration": {"prompt_name": "greet", "label": "prod"},
            "inputs": {"name": "topic", "topic": "topic"},
        },
        {
            "name": "size",
            "type": "code",
            "configuration": {"code": "return len(text)"},
            "inputs": {"text": "draft"},
        },
        {
            "name": "big",
            "type": "conditional",
            "configuration": {"expression": "n > 10", "if_true": ["yes"], "if_false": ["no"]},
            "inputs": {"n": "size"},
        },
        {"name": "yes", "type": "value", "configuration": {"value": 1}, "is_output_node": True},
        {
            "name": "no",
            "type": "variable",
            "configuration": {"name": "tone"},
            "is_output_node": True,
        },
    ],
}


def with_nodes(*nodes: dict[str, Any], variables: list[Any] | None = None) -> dict[str, Any]:
    return {"input_variables": variables or [], "nodes": list(nodes)}


def value(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "value", "configuration": {"value": name}, **extra}


def test_a_valid_definition_parses_into_typed_nodes_with_every_dependency_explicit() -> None:
    spec = parse_definition(VALID)
    assert list(spec.nodes) == ["draft", "size", "big", "yes", "no"]
    assert isinstance(spec.nodes["draft"].config, PromptTemplateConfig)
    assert isinstance(spec.nodes["size"].config, CodeConfig)
    assert isinstance(spec.nodes["big"].config, ConditionalConfig)
    assert spec.nodes["size"].dependencies == {"draft"}
    assert spec.nodes["draft"].dependencies == frozenset()
    # branch nodes depend on their conditional without saying so
    assert spec.nodes["yes"].dependencies == {"big"}
    assert spec.variables["topic"].required and not spec.variables["tone"].required
    assert spec.variables["tone"].default == "dry"
    assert spec.timeout == 30
    assert spec.branches() == {"big": (frozenset({"yes"}), frozenset({"no"}))}


def test_json_bytes_text_and_decoded_data_parse_the_same() -> None:
    text = json.dumps(VALID)
    assert parse_definition(text).to_builtins() == parse_definition(text.encode()).to_builtins()
    assert parse_definition(VALID).to_builtins() == parse_definition(text).to_builtins()


def test_a_reference_can_follow_a_key_path_into_a_nodes_value() -> None:
    spec = parse_definition(with_nodes(value("a"), {**value("b"), "inputs": {"x": "a.items.0.id"}}))
    ref = spec.nodes["b"].inputs["x"]
    assert (ref.kind, ref.source, ref.path) == ("node", "a", ("items", "0", "id"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["nodes"][0].update(type="llm"),
            "node 'draft' has unknown type 'llm'; use one of code, conditional,",
        ),
        (
            lambda d: d["nodes"][1]["inputs"].update(text="drafts"),
            "node 'size': input 'text' reads 'drafts', but 'drafts' is neither a node nor an "
            "input variable",
        ),
        (
            lambda d: d["nodes"][0]["inputs"].update(name="subject"),
            "'subject' is neither a node nor an input variable",
        ),
        (
            lambda d: d["nodes"][4]["configuration"].update(name="mood"),
            "node 'no' (variable): 'mood' is not an input variable",
        ),
        (
            lambda d: d["nodes"][1].update(dependencies=["ghost"]),
            "node 'size' depends on 'ghost', which is not a node",
        ),
        (
            lambda d: d["nodes"][2]["configuration"].update(if_true=["maybe"]),
            "node 'big' (conditional): if_true names 'maybe', which is not a node",
        ),
        (
            lambda d: d["nodes"][1]["configuration"].update(code="return (len(text)"),
            "node 'size' (code): the code does not compile:",
        ),
        (
            lambda d: d["nodes"][2]["configuration"].update(expression="n >"),
            "node 'big' (conditional): the expression does not parse",
        ),
        (
            lambda d: d["nodes"][0]["configuration"].update(version=2),
            "node 'draft' (prompt_template): give version or label, not both",
        ),
        (
            lambda d: d["nodes"][0]["configuration"].pop("prompt_name"),
            "node 'draft' (prompt_template): invalid configuration: Object missing required "
            "field `prompt_name`",
        ),
        (
            lambda d: d["nodes"][3].update(name="draft"),
            "two nodes are named 'draft'",
        ),
        (
            lambda d: d["nodes"][3].update(name="topic"),
            "node 'topic' has the name of an input variable",
        ),
        (
            lambda d: d["nodes"][1]["inputs"].update({"not valid": "draft"}),
            "input name 'not valid' must be an identifier",
        ),
        (
            lambda d: d["nodes"][1].update(colour="red"),
            "invalid workflow definition: Object contains unknown field `colour` - at "
            "`node 'size' ($.nodes[1])`",
        ),
        (lambda d: d.update(nodes=[]), "a workflow needs at least one node"),
        (lambda d: d.update(timeout=-1), "timeout must be more than 0"),
    ],
)
def test_a_definition_that_cannot_run_is_rejected_with_a_message_naming_the_problem(
    mutate: Any, expected: str
) -> None:
    broken = copy.deepcopy(VALID)
    mutate(broken)
    with pytest.raises(DefinitionError) as caught:
        parse_definition(broken)
    assert expected in str(caught.value)


def test_a_cycle_is_rejected_with_its_path() -> None:
    cyclic = with_nodes(
        value("a", dependencies=["c"]),
        value("b", inputs={"x": "a"}),
        value("c", dependencies=["b"]),
        value("d"),
    )
    with pytest.raises(DefinitionError, match=r"the workflow has a cycle: a -> b -> c -> a"):
        parse_definition(cyclic)


def test_a_branch_leading_back_to_its_conditional_is_a_cycle() -> None:
    looped = with_nodes(
        {
            "name": "check",
            "type": "conditional",
            "configuration": {"expression": "true", "if_true": ["after"]},
            "dependencies": ["after"],
        },
        value("after"),
    )
    with pytest.raises(DefinitionError, match="cycle: "):
        parse_definition(looped)


def test_definitions_that_are_not_json_objects_are_rejected_plainly() -> None:
    with pytest.raises(DefinitionError, match="not valid JSON"):
        parse_definition(b"{nodes")
    with pytest.raises(DefinitionError, match="is a JSON object"):
        parse_definition([1, 2])


def test_a_definition_error_is_a_validation_error_callers_already_catch() -> None:
    from promptrun import PromptLayerValidationError

    with pytest.raises(PromptLayerValidationError):
        parse_definition({"nodes": [{"name": "x", "type": "nope"}]})


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[set[int]]]:
    """A random DAG: node i may depend only on nodes before it."""
    size = draw(st.integers(1, 12))
    deps = [draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set() for i in range(size)]
    return size, deps


@given(dags())
def test_any_acyclic_graph_parses_and_keeps_its_edges(dag: tuple[int, list[set[int]]]) -> None:
    size, deps = dag
    spec = parse_definition(
        with_nodes(*(value(f"n{i}", dependencies=[f"n{d}" for d in deps[i]]) for i in range(size)))
    )
    for i in range(size):
        assert spec.nodes[f"n{i}"].dependencies == {f"n{d}" for d in deps[i]}


@given(dags(), st.data())
def test_a_back_edge_is_reported_as_a_cycle_made_of_real_edges(
    dag: tuple[int, list[set[int]]], data: st.DataObject
) -> None:
    size, deps = dag
    if size < 2:
        return
    # Two nodes that depend on each other: a guaranteed cycle, maybe among others.
    low = data.draw(st.integers(0, size - 2))
    high = data.draw(st.integers(low + 1, size - 1))
    deps[low].add(high)
    deps[high].add(low)
    nodes = [value(f"n{i}", dependencies=[f"n{d}" for d in deps[i]]) for i in range(size)]
    with pytest.raises(DefinitionError) as caught:
        parse_definition(with_nodes(*nodes))
    path = str(caught.value).split("cycle: ")[1].split(" -> ")
    assert path[0] == path[-1]
    for before, after in itertools.pairwise(path):
        # values flow from ``before`` to ``after``: after depends on before
        assert int(before[1:]) in deps[int(after[1:])]
