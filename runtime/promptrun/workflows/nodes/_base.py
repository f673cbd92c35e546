"""What every node executor shares: its error, what it is given, and the host's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from promptrun.workflows.definition import (
    CodeConfig,
    NodeSpec,
    PromptTemplateConfig,
    ToolConfig,
    WorkflowSpec,
)

__all__ = ["NodeContext", "NodeError", "NodeOutcome", "NodeServices"]


class NodeError(Exception):
    """A node failed for a reason worth telling: ``message`` for people, ``raw`` as it came."""

    def __init__(self, message: str, raw: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.raw = raw


@dataclass(slots=True)
class NodeOutcome:
    """A node's value, the branch a conditional chose, and the request a prompt node logged."""

    value: Any
    branch: bool | None = None
    request_id: Any = None


@dataclass(frozen=True, slots=True)
class NodeContext:
    """One node about to run: its spec, its resolved inputs, the run's variables and id."""

    node: NodeSpec
    inputs: dict[str, Any]
    variables: dict[str, Any]
    execution_id: str
    metadata: dict[str, str] = field(default_factory=dict)


class NodeServices(Protocol):
    """What the host (the server, or a client in local execution) does for the engine."""

    async def warm_up(self, spec: WorkflowSpec) -> None:
        """Get ready before any node starts (import the provider SDKs the prompts need)."""
        ...

    async def run_prompt(
        self, ctx: NodeContext, config: PromptTemplateConfig
    ) -> tuple[dict[str, Any], Any]:
        """Run a registry prompt with ``ctx.inputs`` as its variables and log it like any run.

        Returns (the output message as a blueprint message, the logged request's id).
        """
        ...

    async def call_tool(self, ctx: NodeContext, config: ToolConfig) -> Any:
        """Call the node's tool with ``ctx.inputs``; returns its answer."""
        ...

    async def run_code(self, ctx: NodeContext, config: CodeConfig) -> Any:
        """Run the node's code with ``ctx.inputs`` in the host's code sandbox; its value."""
        ...
