"""Compiling what a workflow author wrote: code nodes' Python, conditionals' expressions.

Pure: the definition checks them at publish time with these (so a syntax error is a 400 then,
not a failed node later), and the node executors run exactly what was compiled here. Nothing
here runs the code or evaluates an expression.
"""

from __future__ import annotations

import ast
import functools
from types import CodeType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["check_expression", "compile_node_code", "compiled_expression"]

_FILENAME = "<code node>"


def compile_node_code(source: str, parameters: list[str]) -> CodeType:
    """Compile ``source`` as the body of ``def __node__(<parameters>)``; raises SyntaxError."""
    tree = ast.parse(source, filename=_FILENAME, mode="exec")
    args = ast.arguments(
        posonlyargs=[],
        args=[],
        vararg=None,
        kwonlyargs=[ast.arg(arg=name) for name in parameters],
        kw_defaults=[None for _ in parameters],
        kwarg=None,
        defaults=[],
    )
    function = ast.FunctionDef(
        name="__node__",
        args=args,
        body=tree.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    return compile(module, _FILENAME, "exec")


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    # jinja2 is imported when the first conditional is checked or run, never at import time.
    from jinja2 import StrictUndefined

    from promptrun.blueprint._sandbox import LimitedSandbox

    return LimitedSandbox(undefined=StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=1024)
def compiled_expression(expression: str) -> Any:
    """The expression compiled by the limited jinja2 sandbox (cached); raises its
    TemplateSyntaxError."""
    return _environment().compile_expression(expression, undefined_to_none=False)


def check_expression(expression: str) -> str | None:
    """Why ``expression`` does not parse, or None when it does."""
    from jinja2 import TemplateSyntaxError

    if not expression.strip():
        return "the expression is empty"
    try:
        compiled_expression(expression)
    except TemplateSyntaxError as exc:
        return exc.message or str(exc)
    return None
