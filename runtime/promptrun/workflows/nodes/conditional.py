"""Conditional nodes: a sandboxed jinja2 expression over the node's inputs picks a branch.

The expression is compiled by the blueprint's limited jinja2 sandbox (no attribute access to
internals, no mutation of values, no building huge sequences or powers) and evaluated in a
render thread under the default rendering budget (a second, 16 million characters); an input
it uses but was not given is an error, not a silent false. Its truthiness is the branch taken
and the node's value.
"""

from __future__ import annotations

from typing import Any

from promptrun.workflows._compile import compiled_expression
from promptrun.workflows.definition import ConditionalConfig
from promptrun.workflows.nodes._base import NodeContext, NodeError, NodeOutcome

__all__ = ["evaluate", "run_conditional"]


def evaluate(expression: str, variables: dict[str, Any]) -> bool:
    """The truth of ``expression`` over ``variables``; NodeError when it cannot be evaluated."""
    from jinja2.exceptions import SecurityError, UndefinedError

    from promptrun.blueprint import RenderBudgetError
    from promptrun.blueprint._budget import metered

    try:
        with metered(None):
            value = compiled_expression(expression)(**variables)
            return bool(value)
    except RenderBudgetError as exc:
        raise NodeError(
            f"the expression went past its budget: {exc.message}", exc.message
        ) from None
    except UndefinedError as exc:
        raise NodeError(
            f"the expression uses something it was not given: {exc}", str(exc)
        ) from None
    except (SecurityError, OverflowError) as exc:
        raise NodeError(f"the expression was blocked by the sandbox: {exc}", str(exc)) from None
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        raise NodeError(f"the expression failed: {text}", text) from None


async def run_conditional(ctx: NodeContext, config: ConditionalConfig) -> NodeOutcome:
    from promptrun._render_threads import RenderBusyError, run_rendering

    try:
        branch = await run_rendering(evaluate, config.expression, ctx.inputs)
    except RenderBusyError as exc:
        raise NodeError(exc.message, None) from None
    return NodeOutcome(value=branch, branch=branch)
