"""Code nodes: Python the host runs in its sandbox (:mod:`promptrun.workflows._code_sandbox`)."""

from __future__ import annotations

from promptrun.workflows.definition import CodeConfig
from promptrun.workflows.nodes._base import NodeContext, NodeOutcome, NodeServices

__all__ = ["run_code_node"]


async def run_code_node(
    ctx: NodeContext, config: CodeConfig, services: NodeServices
) -> NodeOutcome:
    return NodeOutcome(value=await services.run_code(ctx, config))
