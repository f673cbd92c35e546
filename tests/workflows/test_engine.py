"""The engine on a host of its own: concurrency, failure, skips, timeout and cancellation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from promptrun.workflows import WorkflowRun, parse_definition
from promptrun.workflows._code_sandbox import CodeSandbox
from promptrun.workflows.definition import (
    CodeConfig,
    PromptTemplateConfig,
    ToolConfig,
    WorkflowSpec,
)
from promptrun.workflows.engine import WorkflowInputError, final_output, resolve_variables
from promptrun.workflows.nodes import NodeContext, NodeError

pytestmark = pytest.mark.anyio


class Host:
    """A host whose tools sleep, meet or fail on request and whose prompts echo their inputs.

    Two ``meet`` tools return only once both are running at the same time.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []  # tools that returned, in order
        self.events: list[str] = []  # "<node> started" / "<node> ended", in order
        self.cancelled: list[str] = []
        self._arrived = 0
        self._met = anyio.Event()
        self.warmed: list[str] = []
        self.code = CodeSandbox()

    async def warm_up(self, spec: WorkflowSpec) -> None:
        self.warmed = list(spec.nodes)

    async def run_prompt(
        self, ctx: NodeContext, config: PromptTemplateConfig
    ) -> tuple[dict[str, Any], Any]:
        text = f"{config.prompt_name}: " + ", ".join(f"{k}={v}" for k, v in ctx.inputs.items())
        return {"role": "assistant", "content": [{"type": "text", "text": text}]}, "req_1"

    async def call_tool(self, ctx: NodeContext, config: ToolConfig) -> Any:
        self.events.append(f"{ctx.node.name} started")
        try:
            if config.name == "sleep":
                await anyio.sleep(ctx.inputs.get("seconds", 0.3))
            elif config.name == "meet":
                self._arrived += 1
                if self._arrived == 2:
                    self._met.set()
                with anyio.fail_after(10):  # never reached when they run together
                    await self._met.wait()
            elif config.name == "fail":
                raise NodeError("the tool broke", "ToolError: broke")
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(ctx.node.name)
            raise
        self.calls.append(ctx.node.name)
        self.events.append(f"{ctx.node.name} ended")
        return {"from": ctx.node.name, **ctx.inputs}

    async def run_code(self, ctx: NodeContext, config: CodeConfig) -> Any:
        return await self.code.run(config.code, ctx.inputs, timeout=config.timeout)


def tool(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "tool", "configuration": {"name": kind}, **extra}


async def execute(
    definition: dict[str, Any], variables: dict[str, Any] | None = None, **kw: Any
) -> tuple[WorkflowRun, Host]:
    spec = parse_definition(definition)
    values, _ = resolve_variables(spec, variables)
    host = Host()
    run = WorkflowRun(spec, values, host)
    await run.execute(**kw)
    return run, host


async def test_independent_tool_nodes_run_at_the_same_time() -> None:
    run, host = await execute(
        {"nodes": [tool("left", "meet"), tool("right", "meet"),
                   tool("join", "echo", inputs={"a": "left", "b": "right"}, is_output_node=True)]}
    )  # fmt: skip
    assert run.status == "SUCCESS"  # the two met: each was running while the other was
    # both started before either ended, and the join started after both ended
    assert host.events[:2] == ["left started", "right started"]
    assert host.events[4:] == ["join started", "join ended"]
    assert run.nodes["join"].value == {
        "from": "join",
        "a": {"from": "left"},
        "b": {"from": "right"},
    }


async def test_independent_code_nodes_run_in_parallel_processes() -> None:
    sleep = {"code": "import time\ntime.sleep(0.3)\nreturn n * 2"}
    run, _ = await execute(
        {
            "input_variables": ["n"],
            "nodes": [
                {"name": "a", "type": "code", "configuration": sleep, "inputs": {"n": "n"}},
                {"name": "b", "type": "code", "configuration": sleep, "inputs": {"n": "a"}},
                {"name": "c", "type": "code", "configuration": sleep, "inputs": {"n": "n"}},
            ],
        },
        {"n": 5},
    )
    assert [run.nodes[x].value for x in "abc"] == [10, 20, 10]
    a, b, c = (run.nodes[x] for x in "abc")
    assert a.started_at and a.finished_at and b.started_at and c.started_at and c.finished_at
    # a -> b is a chain; c runs beside a, not after it
    assert b.started_at >= a.finished_at
    assert c.started_at < a.finished_at and a.started_at < c.finished_at


async def test_a_failure_fails_what_depends_on_it_and_the_rest_still_runs() -> None:
    run, host = await execute(
        {"nodes": [
            tool("broken", "fail"),
            tool("after", "echo", inputs={"x": "broken"}),
            tool("later", "echo", dependencies=["after"], is_output_node=True),
            tool("other", "echo", is_output_node=True),
        ]}
    )  # fmt: skip
    broken, after, later, other = (run.nodes[n] for n in ("broken", "after", "later", "other"))
    assert broken.status == "FAILED"
    assert broken.error_message == "node 'broken' failed: the tool broke"
    assert broken.raw_error_message == "ToolError: broke"
    assert (after.status, after.error_message) == (
        "FAILED",
        "not run: upstream node 'broken' failed",
    )
    assert (later.status, later.error_message) == (
        "FAILED",
        "not run: upstream node 'broken' failed",
    )
    assert other.status == "SUCCESS"
    assert host.calls == ["other"]
    assert run.status == "SUCCESS"  # an output node succeeded
    assert final_output(run.results()) == (True, {"from": "other"})


async def test_a_conditional_runs_one_branch_and_skips_the_other_with_the_reason() -> None:
    definition = {
        "input_variables": ["score"],
        "nodes": [
            {"name": "check", "type": "conditional",
             "configuration": {"expression": "score >= 0.5", "if_true": ["good"],
                               "if_false": ["bad"]},
             "inputs": {"score": "score"}},
            {"name": "good", "type": "value", "configuration": {"value": "yay"}, "is_output_node": True},
            {"name": "bad", "type": "value", "configuration": {"value": "nay"}, "is_output_node": True},
            {"name": "after_bad", "type": "value", "configuration": {"value": 0}, "dependencies": ["bad"]},
        ],
    }  # fmt: skip
    run, _ = await execute(definition, {"score": 0.2})
    results = run.results()
    assert results["check"]["value"] is False
    assert results["bad"]["status"] == "SUCCESS"
    assert results["good"] == {
        "status": "SKIPPED",
        "value": None,
        "error_message": "skipped: conditional 'check' was false, and this node is on its true branch",
        "raw_error_message": None,
        "is_output_node": True,
    }
    assert results["after_bad"]["status"] == "SUCCESS"
    assert final_output(results) == (True, "nay")


async def test_a_conditional_that_reads_a_missing_name_fails_instead_of_guessing() -> None:
    run, _ = await execute(
        {"nodes": [{"name": "check", "type": "conditional",
                    "configuration": {"expression": "score > 1", "if_true": ["x"]}},
                   {"name": "x", "type": "value", "configuration": {"value": 1}}]}
    )  # fmt: skip
    assert run.nodes["check"].status == "FAILED"
    assert "'score' is undefined" in (run.nodes["check"].error_message or "")
    assert run.nodes["x"].status == "FAILED"


async def test_a_conditional_expression_cannot_reach_python_internals() -> None:
    run, _ = await execute(
        {"input_variables": ["s"],
         "nodes": [{"name": "check", "type": "conditional",
                    "configuration": {"expression": "s.__class__.__mro__[1].__subclasses__()"},
                    "inputs": {"s": "s"}}]},
        {"s": "text"},
    )  # fmt: skip
    assert run.nodes["check"].status == "FAILED"
    assert run.nodes["check"].error_message == (
        "node 'check' failed: the expression was blocked by the sandbox: access to attribute "
        "'__class__' of 'str' object is unsafe."
    )


async def test_a_conditional_expression_is_held_to_the_rendering_budget() -> None:
    run, _ = await execute(
        {"input_variables": ["s"],
         "nodes": [{"name": "check", "type": "conditional",
                    "configuration": {"expression": "s|center(999999999) != ''"},
                    "inputs": {"s": "s"}}]},
        {"s": "text"},
    )  # fmt: skip
    assert run.nodes["check"].status == "FAILED"
    assert "the expression went past its budget" in (run.nodes["check"].error_message or "")
    assert "16,000,000 characters" in (run.nodes["check"].error_message or "")


async def test_the_timeout_cancels_running_nodes_and_skips_waiting_ones() -> None:
    run, host = await execute(
        {"nodes": [
            tool("slow", "sleep", inputs={"seconds": "ten"}),
            tool("after", "echo", inputs={"x": "slow"}, is_output_node=True),
            tool("quick", "echo"),
        ], "input_variables": [{"name": "ten", "default": 10}]},
        timeout=0.2,
    )  # fmt: skip
    assert run.timed_out
    assert host.cancelled == ["slow"]
    assert (run.nodes["slow"].status, run.nodes["slow"].error_message) == (
        "FAILED",
        "cancelled: the workflow timed out after 0.2 s",
    )
    assert (run.nodes["after"].status, run.nodes["after"].error_message) == (
        "SKIPPED",
        "not run: the workflow timed out after 0.2 s",
    )
    assert run.nodes["quick"].status == "SUCCESS"
    assert run.status == "FAILED"


async def test_the_definitions_timeout_applies_when_none_is_given() -> None:
    run, _ = await execute(
        {"timeout": 0.1, "nodes": [tool("slow", "sleep", inputs={"seconds": "s"})],
         "input_variables": [{"name": "s", "default": 5}]}
    )  # fmt: skip
    assert run.timed_out and run.nodes["slow"].status == "FAILED"


async def test_cancelling_the_caller_settles_every_node_and_propagates() -> None:
    spec = parse_definition(
        {"nodes": [tool("slow", "sleep", inputs={"seconds": "s"}), tool("after", "echo", inputs={"x": "slow"})],
         "input_variables": [{"name": "s", "default": 5}]}
    )  # fmt: skip
    host = Host()
    run = WorkflowRun(spec, {"s": 5}, host)
    with anyio.move_on_after(0.1) as scope:
        await run.execute()
    assert scope.cancelled_caught
    assert host.cancelled == ["slow"]
    assert run.nodes["slow"].error_message == "cancelled: the workflow was cancelled"
    assert run.nodes["after"].status == "SKIPPED"


async def test_prompt_nodes_give_text_json_or_the_whole_message() -> None:
    def prompt(name: str, output: str) -> dict[str, Any]:
        return {"name": name, "type": "prompt_template",
                "configuration": {"prompt_name": "p", "output": output}, "inputs": {"a": "a"}}  # fmt: skip

    run, _ = await execute(
        {"input_variables": ["a"], "nodes": [prompt("text", "text"), prompt("message", "message"), prompt("json", "json")]},
        {"a": 1},
    )  # fmt: skip
    assert run.nodes["text"].value == "p: a=1"
    assert run.nodes["text"].request_id == "req_1"
    assert run.nodes["message"].value["role"] == "assistant"
    assert run.nodes["json"].status == "FAILED"
    assert "is not JSON (output is 'json')" in (run.nodes["json"].error_message or "")


async def test_a_key_path_that_is_not_in_the_value_fails_the_reading_node() -> None:
    run, _ = await execute(
        {"nodes": [{"name": "v", "type": "value", "configuration": {"value": {"items": [1]}}},
                   {"name": "a", "type": "value", "configuration": {"value": 0}, "inputs": {"x": "v.items.3"}},
                   {"name": "b", "type": "value", "configuration": {"value": 0}, "inputs": {"x": "v.nope"}},
                   {"name": "c", "type": "code", "configuration": {"code": "return x"}, "inputs": {"x": "v.items.0"}}]}
    )  # fmt: skip
    assert (
        run.nodes["a"].error_message
        == "node 'a' failed: input 'x': 'v.items.3': index 3 is out of range"
    )
    assert (
        run.nodes["b"].error_message
        == "node 'b' failed: input 'x': 'v.nope': the value has no key 'nope'"
    )
    assert run.nodes["c"].value == 1


def test_a_required_input_variable_must_be_given_and_extra_ones_are_reported() -> None:
    spec = parse_definition(
        {"input_variables": ["a", {"name": "b", "default": [1]}],
         "nodes": [{"name": "v", "type": "variable", "configuration": {"name": "a"}}]}
    )  # fmt: skip
    with pytest.raises(WorkflowInputError, match="input variable 'a' is required"):
        resolve_variables(spec, {})
    assert resolve_variables(spec, {"a": 1, "z": 2}) == ({"a": 1, "b": [1]}, ["z"])


def test_the_final_output_is_the_last_output_node_that_succeeded() -> None:
    ok = {"status": "SUCCESS", "is_output_node": True}
    assert final_output({"a": {**ok, "value": 1}, "b": {**ok, "value": 2}}) == (True, 2)
    assert final_output(
        {"a": {**ok, "value": 1}, "b": {**ok, "status": "FAILED", "value": None}}
    ) == (True, 1)
    assert final_output({"a": {**ok, "is_output_node": False, "value": 1}}) == (False, None)
