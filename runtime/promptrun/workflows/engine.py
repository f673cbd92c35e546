"""Run a workflow: ready nodes run concurrently in one anyio task group.

One engine serves both hosts: the server (provider calls with the server's own keys, requests
logged in its store) and a client's local execution (provider clients with the client's keys,
Python callables as tools). The host supplies a :class:`~promptrun.workflows.nodes.NodeServices`.

:class:`WorkflowRun` holds the results from the start, so whatever ends a run (success, a
node's failure, the timeout, a cancellation from outside) leaves every node with a final
status, a value or an error, and its timing. Each node's result:

- ``status``: ``SUCCESS``, ``FAILED`` or ``SKIPPED``
- ``value``: what the node produced (None unless it succeeded)
- ``error_message``: why it failed or was skipped, for people
- ``raw_error_message``: the underlying error text, as raised
- ``is_output_node``: from the definition
- ``started_at`` / ``finished_at``: epoch seconds (None for nodes that never started)
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from promptrun.workflows.definition import NodeSpec, Ref, WorkflowSpec
from promptrun.workflows.nodes import NodeContext, NodeError, NodeServices, run_node
from promptrun.workflows.schedule import Schedule, Settled, Status

__all__ = [
    "NodeResult",
    "WorkflowInputError",
    "WorkflowRun",
    "final_output",
    "public_results",
    "resolve_variables",
]

logger = logging.getLogger("promptlayer")
_INDEX = re.compile(r"-?[0-9]{1,9}")
PUBLIC_KEYS = ("status", "value", "error_message", "raw_error_message", "is_output_node")


class WorkflowInputError(ValueError):
    """The input variables do not fit the workflow (one is missing)."""


@dataclass(slots=True)
class NodeResult:
    name: str
    type: str
    is_output_node: bool
    status: Status = Status.PENDING
    value: Any = None
    error_message: str | None = None
    raw_error_message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    request_id: Any = None

    def public(self) -> dict[str, Any]:
        """The record the PromptLayer API returns for a node."""
        return {
            "status": str(self.status),
            "value": self.value,
            "error_message": self.error_message,
            "raw_error_message": self.raw_error_message,
            "is_output_node": self.is_output_node,
        }


def resolve_variables(
    spec: WorkflowSpec, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """The run's variables (defaults filled in) and the names given that it does not declare."""
    given = dict(given or {})
    variables: dict[str, Any] = {}
    for name, var in spec.variables.items():
        if name in given:
            variables[name] = given[name]
        elif var.required:
            raise WorkflowInputError(f"input variable {name!r} is required and was not given")
        else:
            variables[name] = var.default
    return variables, sorted(set(given) - set(spec.variables))


def public_results(nodes: Mapping[str, NodeResult]) -> dict[str, dict[str, Any]]:
    return {name: result.public() for name, result in nodes.items()}


def final_output(results: Mapping[str, Mapping[str, Any]]) -> tuple[bool, Any]:
    """(True, value of the final output node) or (False, None) when no output node succeeded.

    The final output node is the last output node, in definition order, that succeeded: with
    branches, the one on the branch that ran.
    """
    found = False
    value: Any = None
    for record in results.values():
        if record.get("is_output_node") and record.get("status") == "SUCCESS":
            found, value = True, record.get("value")
    return found, value


def _follow(value: Any, ref: Ref) -> Any:
    for key in ref.path:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list | tuple) and _INDEX.fullmatch(key):
            try:
                value = value[int(key)]
            except IndexError:
                raise NodeError(f"{ref.text!r}: index {key} is out of range", None) from None
        else:
            raise NodeError(f"{ref.text!r}: the value has no key {key!r}", None)
    return value


NodeObserver = Callable[[NodeSpec, NodeResult], AbstractContextManager[object]]


def _unobserved(node: NodeSpec, result: NodeResult) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


class WorkflowRun:
    """One execution of a spec; :meth:`execute` runs it, :attr:`nodes` has the results."""

    def __init__(
        self,
        spec: WorkflowSpec,
        variables: dict[str, Any],
        services: NodeServices,
        *,
        execution_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.variables = variables
        self.services = services
        self.execution_id = execution_id or f"local_{uuid.uuid4().hex}"
        self.metadata = dict(metadata or {})
        self.nodes = {
            name: NodeResult(name, node.type, node.is_output_node)
            for name, node in spec.nodes.items()
        }
        self.schedule = Schedule(
            {name: node.dependencies for name, node in spec.nodes.items()}, spec.branches()
        )
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.timed_out = False
        self._tg: TaskGroup | None = None
        #: Surrounds each node's run, and sees its result when it settles (a tracing span).
        self.observe: NodeObserver = _unobserved

    @property
    def status(self) -> str:
        """SUCCESS when an output node succeeded (or, with none, no node failed), else FAILED."""
        outputs = [r for r in self.nodes.values() if r.is_output_node]
        if outputs:
            ok = any(r.status is Status.SUCCESS for r in outputs)
        else:
            ok = all(r.status is not Status.FAILED for r in self.nodes.values())
        return "SUCCESS" if ok else "FAILED"

    def results(self) -> dict[str, dict[str, Any]]:
        return public_results(self.nodes)

    async def execute(self, timeout: float | None = None) -> None:
        """Run every node that can run; returns when all are settled.

        ``timeout`` (seconds; else the definition's) cancels whatever is still running: those
        nodes FAIL and the ones that had not started are SKIPPED. A cancellation from outside
        settles them the same way and then propagates.
        """
        limit = timeout if timeout is not None else self.spec.timeout
        self.started_at = time.time()
        try:
            with anyio.move_on_after(limit) as scope:
                await self._warm_up()
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    self._launch()
            if scope.cancelled_caught:
                self.timed_out = True
                self._interrupt(
                    f"cancelled: the workflow timed out after {limit:g} s",
                    f"not run: the workflow timed out after {limit:g} s",
                )
        except BaseException:
            self._interrupt(
                "cancelled: the workflow was cancelled", "not run: the workflow was cancelled"
            )
            raise
        finally:
            self._tg = None
            self.finished_at = time.time()

    # -- internals ---------------------------------------------------------------------
    async def _warm_up(self) -> None:
        try:
            await self.services.warm_up(self.spec)
        except Exception as exc:  # only a precaution: the nodes report real problems
            logger.debug("warming up for workflow execution %s failed: %s", self.execution_id, exc)

    def _launch(self) -> None:
        assert self._tg is not None
        for name in self.schedule.ready():
            self.schedule.start(name)
            result = self.nodes[name]
            result.status = Status.RUNNING
            result.started_at = time.time()
            self._tg.start_soon(self._run, self.spec.nodes[name], name=f"workflow node {name}")

    def _context(self, node: NodeSpec) -> NodeContext:
        inputs: dict[str, Any] = {}
        for local, ref in node.inputs.items():
            root = (
                self.variables[ref.source]
                if ref.kind == "variable"
                else self.nodes[ref.source].value
            )
            try:
                inputs[local] = _follow(root, ref)
            except NodeError as exc:
                raise NodeError(f"input {local!r}: {exc.message}", exc.raw) from None
        return NodeContext(
            node=node,
            inputs=inputs,
            variables=self.variables,
            execution_id=self.execution_id,
            metadata=self.metadata,
        )

    async def _run(self, node: NodeSpec) -> None:
        result = self.nodes[node.name]
        with self.observe(node, result):
            try:
                outcome = await run_node(self._context(node), self.services)
            except NodeError as exc:
                result.error_message = f"node {node.name!r} failed: {exc.message}"
                result.raw_error_message = exc.raw
                self._settle(result, self.schedule.fail(node.name), Status.FAILED)
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                result.error_message = f"node {node.name!r} failed: {text}"
                result.raw_error_message = str(exc)
                self._settle(result, self.schedule.fail(node.name), Status.FAILED)
            else:
                result.value = outcome.value
                result.request_id = outcome.request_id
                self._settle(
                    result, self.schedule.succeed(node.name, outcome.branch), Status.SUCCESS
                )
        self._launch()

    def _settle(self, result: NodeResult, settled: list[Settled], status: Status) -> None:
        result.status = status
        result.finished_at = time.time()
        for item in settled:
            other = self.nodes[item.name]
            other.status = item.status
            other.error_message = item.reason

    def _interrupt(self, running_reason: str, pending_reason: str) -> None:
        # Waiting nodes first, so they carry the real reason rather than "upstream failed".
        for item in self.schedule.abort(pending_reason):
            other = self.nodes[item.name]
            other.status = item.status
            other.error_message = item.reason
        for name in self.schedule.running:
            result = self.nodes[name]
            result.error_message = running_reason
            self._settle(result, self.schedule.fail(name), Status.FAILED)
