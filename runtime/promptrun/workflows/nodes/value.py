"""Value and variable nodes: a constant from the definition, or one input variable."""

from __future__ import annotations

import copy

from promptrun.workflows.definition import ValueConfig, VariableConfig
from promptrun.workflows.nodes._base import NodeContext, NodeOutcome

__all__ = ["run_value", "run_variable"]


async def run_value(ctx: NodeContext, config: ValueConfig) -> NodeOutcome:
    # A copy, so a node downstream that mutates what it reads cannot change the definition.
    return NodeOutcome(value=copy.deepcopy(config.value))


async def run_variable(ctx: NodeContext, config: VariableConfig) -> NodeOutcome:
    return NodeOutcome(value=ctx.variables[config.name])
