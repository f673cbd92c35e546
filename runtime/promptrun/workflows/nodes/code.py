"""Code nodes: Python run by :mod:`promptrun.workflows._code_sandbox` in a child process."""

from __future__ import annotations

from promptrun.workflows._code_sandbox import run_code
from promptrun.workflows.definition import CodeConfig
from promptrun.workflows.nodes._base import NodeContext, NodeOutcome

__all__ = ["run_code_node"]


async def run_code_node(ctx: NodeContext, config: CodeConfig) -> NodeOutcome:
    value = await run_code(config.code, ctx.inputs, timeout=config.timeout)
    return NodeOutcome(value=value)
