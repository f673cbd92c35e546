"""Node executors, one module per node type; :func:`run_node` picks the right one."""

from __future__ import annotations

from promptrun.workflows.definition import (
    CodeConfig,
    ConditionalConfig,
    PromptTemplateConfig,
    ToolConfig,
    ValueConfig,
    VariableConfig,
)
from promptrun.workflows.nodes._base import NodeContext as NodeContext
from promptrun.workflows.nodes._base import NodeError as NodeError
from promptrun.workflows.nodes._base import NodeOutcome as NodeOutcome
from promptrun.workflows.nodes._base import NodeServices as NodeServices

__all__ = ["NodeContext", "NodeError", "NodeOutcome", "NodeServices", "run_node"]


async def run_node(ctx: NodeContext, services: NodeServices) -> NodeOutcome:
    """Run one node; raises NodeError (or anything its host raised) when it fails."""
    config = ctx.node.config
    if isinstance(config, PromptTemplateConfig):
        from promptrun.workflows.nodes.prompt import run_prompt

        return await run_prompt(ctx, config, services)
    if isinstance(config, CodeConfig):
        from promptrun.workflows.nodes.code import run_code_node

        return await run_code_node(ctx, config, services)
    if isinstance(config, ConditionalConfig):
        from promptrun.workflows.nodes.conditional import run_conditional

        return await run_conditional(ctx, config)
    if isinstance(config, ToolConfig):
        from promptrun.workflows.nodes.tool import run_tool

        return await run_tool(ctx, config, services)
    from promptrun.workflows.nodes.value import run_value, run_variable

    if isinstance(config, ValueConfig):
        return await run_value(ctx, config)
    assert isinstance(config, VariableConfig)
    return await run_variable(ctx, config)
