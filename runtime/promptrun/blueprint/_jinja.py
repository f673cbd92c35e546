"""The jinja2 side of rendering: one sandboxed environment, compiled templates cached.

Imported only when a jinja2 template is rendered, so ``import promptrun`` never pays for jinja2.
The environment is :class:`~._sandbox.LimitedSandbox`: rendering runs under the budget of the
rendering in progress (see :mod:`._budget`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, Template, Undefined, meta
from jinja2 import TemplateSyntaxError as JinjaSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.utils import missing

from promptrun.blueprint._budget import RenderBudgetError, meter
from promptrun.blueprint._errors import (
    MissingVariablesError,
    TemplateRenderError,
    TemplateSyntaxError,
    UnsafeTemplateError,
)
from promptrun.blueprint._sandbox import LimitedSandbox

# Each tag or expression costs compile time (about 0.2 ms; once per text, on whichever thread
# renders it first); real prompts use a few dozen.
MAX_TAGS = 2_000


class _MissingName(UndefinedError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is undefined")
        self.name = name


def _fail(self: Undefined, *args: Any, **kwargs: Any) -> Any:
    # A top-level name that is simply absent is a missing input variable; everything else
    # (unsafe attributes, missing keys of a given value) keeps jinja2's own error.
    owner = self._undefined_obj
    if owner is missing and self._undefined_exception is UndefinedError:
        raise _MissingName(str(self._undefined_name))
    if isinstance(owner, Undefined) and not isinstance(owner, _Blank):
        # A lookup on an undefined (``attr`` on a blocked attribute): report the first cause.
        return _fail(owner)
    return Undefined._fail_with_undefined_error(self, *args, **kwargs)


class _Blank(ChainableUndefined):
    """Stands in for a missing variable while looking for the others."""

    __slots__ = ()


class _StrictUndefined(StrictUndefined):
    __slots__ = ()


# StrictUndefined binds its dunders to the base function object, so rebind each of them.
for _cls in (Undefined, StrictUndefined):
    for _name, _value in list(vars(_cls).items()):
        if _value is Undefined._fail_with_undefined_error:
            setattr(_StrictUndefined, _name, _fail)


class _Sandbox(LimitedSandbox):
    # Any lookup on a missing variable reports the variable, even ``x.__class__``.
    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is _StrictUndefined:
            return _fail(obj)
        if type(obj) is _Blank:
            return obj
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if type(obj) is _StrictUndefined:
            return _fail(obj)
        if type(obj) is _Blank:
            return obj
        return super().getitem(obj, argument)


@functools.cache
def _environment() -> _Sandbox:
    return _Sandbox(undefined=_StrictUndefined, autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> tuple[Template, frozenset[str]]:
    env = _environment()
    tags = text.count("{{") + text.count("{%")
    if tags > MAX_TAGS:
        raise UnsafeTemplateError(
            f"jinja2 template has {tags:,} tags and expressions; the limit is {MAX_TAGS:,}"
        )
    try:
        ast = env.parse(text)
        names = frozenset(meta.find_undeclared_variables(ast))
        return env.from_string(ast), names
    except JinjaSyntaxError as exc:
        raise TemplateSyntaxError(
            f"jinja2 template syntax error on line {exc.lineno}: {exc.message}"
        ) from None
    except SecurityError as exc:
        raise UnsafeTemplateError(f"jinja2 template blocked by the sandbox: {exc}") from None
    except (RecursionError, SyntaxError, MemoryError) as exc:
        # Nesting deeper than the parser (or Python's compiler) goes.
        raise TemplateSyntaxError(
            f"jinja2 template is nested too deeply to compile ({type(exc).__name__})"
        ) from None


def variables_in(text: str) -> list[str]:
    """The names a jinja2 template reads from its context, sorted."""
    return sorted(_compile(text)[1])


def render(text: str, variables: Mapping[str, Any], missing: list[str] | None = None) -> str:
    """Render ``text`` as a sandboxed jinja2 template.

    ``missing``: None to raise :class:`MissingVariablesError`; else missing names render as
    chainable blanks (empty, and so is any lookup or filter on them) and are added to it.
    """
    started = time.monotonic()
    template, names = _compile(text)
    # Compiling is bounded by MAX_TAGS and done once per text: it is not the rendering's time.
    meter().deadline += time.monotonic() - started
    try:
        return _checked(template.render, variables)
    except _MissingName as exc:
        first = exc.name
    found = _all_missing(template, names, variables, first)
    if missing is None:
        raise MissingVariablesError(found)
    missing.extend(found)
    blanks = {**variables, **{name: _Blank(name=name) for name in found}}
    try:
        return _checked(template.render, blanks)
    except _MissingName as exc:  # only behind a render error _all_missing stopped at
        raise TemplateRenderError(f"jinja2 template failed: {exc}") from None


def _checked(render: Any, variables: Mapping[str, Any]) -> str:
    """``render(variables)`` with jinja2's errors as ours; a missing name passes through."""
    try:
        return str(render(variables))
    except (_MissingName, RenderBudgetError):
        raise
    except (SecurityError, OverflowError) as exc:
        raise UnsafeTemplateError(f"jinja2 template blocked by the sandbox: {exc}") from None
    except Exception as exc:
        raise TemplateRenderError(f"jinja2 template failed: {type(exc).__name__}: {exc}") from None


def _all_missing(
    template: Template, names: frozenset[str], variables: Mapping[str, Any], first: str
) -> list[str]:
    """Every name the template really uses but was not given, found by re-rendering.

    Each pass stands a chainable blank in for the names found so far; names that are only
    tested with ``is defined`` are never reported. Only runs on the error path.
    """
    found = [first]
    context = dict(variables)
    for _ in range(len(names) + 1):
        context[found[-1]] = _Blank(name=found[-1])
        try:
            template.render(context)
        except _MissingName as exc:
            if exc.name in found:
                break
            found.append(exc.name)
            continue
        except RenderBudgetError:
            pass  # report the names found so far
        except Exception:
            pass
        break
    return found
