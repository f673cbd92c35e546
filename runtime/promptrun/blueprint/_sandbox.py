"""jinja2's immutable sandbox, held to a rendering budget (see :mod:`._budget`).

jinja2's sandbox stops a template from reaching Python internals; it does not stop one from
working forever or building a string of a billion characters. This one also:

- compiles every template with hooks: each loop iteration checks the deadline, each piece of
  output (literal text inside loops and macros included) is charged, and ``~`` charges what it
  joins, all before the work is done;
- charges ``+``, ``*`` and ``%`` on strings and lists, and refuses integers past
  ``MAX_INT_BITS`` bits and exponents past ``MAX_EXPONENT``;
- refuses format widths and precisions past ``MAX_WIDTH`` (``'%999999999s' % x``,
  ``'{:>999999999}'.format(x)``, ``|format``) and nested format specs, and charges a format's
  largest possible output before running it;
- wraps every filter: it checks the deadline, charges (or refuses) what the filter could build
  from its arguments before calling it (``center``, ``indent``, ``join``, ``replace``,
  ``wordwrap``, ``batch``, ``slice``...), and charges what it did build;
- charges the string methods that build from a size (``ljust``, ``center``, ``zfill``,
  ``expandtabs``, ``replace``, ``join``) before calling them, and refuses ``translate``;
- never evaluates filters while compiling (jinja2 folds constant expressions at compile time,
  where no budget applies).

Ranges stay capped at jinja2's 100,000 items; ``lipsum`` is gone.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context
from jinja2.visitor import NodeTransformer

from promptrun.blueprint._budget import meter

__all__ = ["MAX_EXPONENT", "MAX_INT_BITS", "MAX_SEQUENCE", "MAX_WIDTH", "LimitedSandbox"]

MAX_SEQUENCE = 1_000_000
"""Items or characters one ``*`` may build."""
MAX_EXPONENT = 1_000
MAX_INT_BITS = 100_000
"""Bits of an integer an operator may build (about 30,000 digits)."""
MAX_WIDTH = 10_000
"""A format's width or precision."""

# Worst-case growth of a filter's output over its input's length, for filters that build
# text from text; charged up front so the allocation itself stays within the budget.
_GROWTH = {
    "upper": 3, "lower": 3, "title": 3, "capitalize": 3, "escape": 6, "e": 6,
    "forceescape": 6, "urlencode": 12, "tojson": 6, "pprint": 6, "xmlattr": 6, "string": 1,
    "trim": 1, "striptags": 1, "truncate": 1, "reverse": 1, "safe": 1,
}  # fmt: skip
# Filters written in Python that do a lot per character and cannot be interrupted midway:
# the longest text each takes (about a tenth of a second's work).
_SLOW_INPUT = {"wordwrap": 1_000_000, "urlize": 250_000, "pprint": 1_000_000}
_SPEC_NUMBERS = re.compile(r"\d+")
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?"
    r"[hlL]?(?P<kind>[diouxXeEfFgGcrsa%])"
)


def _refuse(what: str) -> SecurityError:
    # Shown after "blocked by the sandbox: ".
    return SecurityError(f"{what} is not allowed")


def _width(number: int, what: str) -> int:
    if number > MAX_WIDTH:
        raise _refuse(f"{what} over {MAX_WIDTH:,}")
    return number


def _text_size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else len(str(value))


def percent_size(template: str, args: Any) -> int:
    """The most characters ``template % args`` can build; refuses widths past MAX_WIDTH."""
    directives = [m for m in _PERCENT.finditer(template) if m.group("kind") != "%"]
    star_values = iter(args if isinstance(args, tuple) else (args,))
    for m in directives:
        for part in ("width", "precision"):
            spec = m.group(part)
            if spec == "*":
                given = next(star_values, 0)
                if isinstance(given, int):
                    _width(abs(given), f"a %-format {part}")
            elif spec is not None:
                _width(int(spec), f"a %-format {part}")
    if isinstance(args, Mapping):
        largest = max((_text_size(v) for v in args.values()), default=0)
        values = largest * len(directives)
    elif isinstance(args, tuple):
        values = sum(_text_size(v) for v in args)
    else:
        values = _text_size(args) * max(1, len(directives))
    # repr (%r) of a string can be ten times its length (\U0001f600 escapes).
    if any(m.group("kind") in "ra" for m in directives):
        values *= 10
    return len(template) + values + len(directives) * MAX_WIDTH


def brace_size(template: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> int:
    """The most characters ``template.format(...)`` can build; refuses nested specs and widths
    past MAX_WIDTH."""
    fields = 0
    converted = False
    for _literal, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        fields += 1
        converted = converted or conversion in ("r", "a")
        if spec and "{" in spec:
            raise _refuse("nested format specs")
        for number in _SPEC_NUMBERS.findall(spec or ""):
            _width(int(number), "a format width or precision")
    largest = max(
        (_text_size(v) for v in (*args, *kwargs.values())),
        default=0,
    )
    return len(template) + fields * ((10 if converted else 1) * largest + MAX_WIDTH)


# -- estimates of what a filter (or a string method) can build, from its arguments -----------


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], at: int, name: str, default: Any) -> Any:
    if len(args) > at:
        return args[at]
    return kwargs.get(name, default)


def _int_arg(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _center(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return max(_int_arg(_arg(args, kwargs, 0, "width", 80)), _text_size(value))


def _indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    width = _arg(args, kwargs, 0, "width", 4)
    step = len(width) if isinstance(width, str) else _int_arg(width)
    text = str(value)
    return len(text) + (text.count("\n") + 1) * step


def _format(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return percent_size(str(value), kwargs if kwargs else tuple(args))


def _wordwrap(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    size = _text_size(value)
    width = max(1, _int_arg(_arg(args, kwargs, 0, "width", 79)))
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    return size + (size // width + 1) * (len(str(wrap)) if wrap is not None else 2)


def replace_size(text: str, old: str, new: str, count: Any) -> int:
    times = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * max(0, len(new) - len(old))


def _replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    old = str(_arg(args, kwargs, 0, "old", ""))
    new = str(_arg(args, kwargs, 1, "new", ""))
    return replace_size(str(value), old, new, _arg(args, kwargs, 2, "count", None))


def _units(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def _batch(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return _units(value) + _int_arg(_arg(args, kwargs, 0, "linecount", 0))


def _slice(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return _units(value) + _int_arg(_arg(args, kwargs, 0, "slices", 0))


def _urlize(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    size = _text_size(value)
    extra = sum(len(str(kwargs.get(k) or "")) for k in ("rel", "target"))
    return 4 * size + (size // 4 + 1) * (extra + 40)


_ESTIMATES: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], int]] = {
    "center": _center, "indent": _indent, "format": _format, "wordwrap": _wordwrap,
    "replace": _replace, "batch": _batch, "slice": _slice, "urlize": _urlize,
}  # fmt: skip


def _materialized(name: str, value: Any) -> Any:
    """``join``'s items as a list, so they can be measured and then joined (a generator
    could be read only once)."""
    if name == "join" and not isinstance(value, str | bytes | list | tuple):
        items = []
        budget = meter()
        for item in value:
            budget.tick()
            items.append(item)
        return items
    return value


def _join_size(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    separator = str(_arg(args, kwargs, 0, "d", ""))
    if isinstance(value, str):
        return len(value) * (1 + len(separator))
    items = list(value)
    return sum(_text_size(x) for x in items) + len(separator) * max(0, len(items) - 1)


_ESTIMATES["join"] = _join_size


def _charge_result(result: Any) -> Any:
    if isinstance(result, str | bytes | list | tuple):
        meter().spend(len(result))
    return result


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    lead = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    estimate = _ESTIMATES.get(name)
    growth = _GROWTH.get(name, 2)
    slow_limit = _SLOW_INPUT.get(name)

    # pass_context on every filter: jinja2 then never evaluates one while compiling.
    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = meter()
        budget.tick()
        value = _materialized(name, value)
        if isinstance(value, list | tuple | dict) and len(value) > MAX_SEQUENCE:
            raise _refuse(f"|{name} on more than {MAX_SEQUENCE:,} items")
        if slow_limit is not None and _text_size(value) > slow_limit:
            raise _refuse(f"|{name} on more than {slow_limit:,} characters")
        if name == "sum" and not isinstance(_arg(args, kwargs, 1, "start", 0), int | float):
            raise _refuse("sum with a start that is not a number (it adds numbers only)")
        if estimate is not None:
            budget.spend(estimate(value, args, kwargs))
        elif isinstance(value, str | bytes) and growth * len(value) > budget.budget.max_chars:
            # Could build more than the whole budget in one call: refuse before it does. A
            # smaller worst case is charged by what the call really builds.
            budget.spend(growth * len(value))
        if lead == "context":
            result = func(context, value, *args, **kwargs)
        elif lead == "eval_context":
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif lead == "environment":
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return result if estimate is not None else _charge_result(result)

    return guarded


# -- the filters the compiled hooks call --------------------------------------------------


@pass_context
def _count_output(context: Context, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    meter().spend(len(text))
    return text


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    texts = [p if isinstance(p, str) else str(p) for p in parts]
    meter().spend(sum(len(t) for t in texts))
    return "".join(texts)


def _ticking(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = meter()
    for item in iterable:
        budget.tick()
        yield item


@pass_context
def _loop(context: Context, iterable: Any) -> Any:
    # Undefined (a missing loop variable) must reach jinja2 unchanged to report itself.
    return _ticking(iterable) if isinstance(iterable, Iterable) else iterable


_OUTPUT, _CONCAT, _LOOP = "_budget_output", "_budget_concat", "_budget_loop"
_INTERNAL = {_OUTPUT: _count_output, _CONCAT: _concat, _LOOP: _loop}


def _call_filter(name: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Metering(NodeTransformer):
    """Puts the budget's hooks into a parsed template (see the module's description)."""

    def __init__(self) -> None:
        self.repeated = 0  # inside a loop, macro or call block: output that may repeat

    def _body(self, node: nodes.Node) -> nodes.Node:
        self.repeated += 1
        try:
            return self.generic_visit(node)
        finally:
            self.repeated -= 1

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node.iter = _call_filter(_LOOP, self.visit(node.iter))
        return self._body(node)

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        return self._body(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._body(node)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        counted: list[nodes.Expr] = []
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                # Literal text is bounded by the template's size, unless it can repeat.
                if self.repeated:
                    child = _call_filter(_OUTPUT, nodes.Const(child.data, lineno=child.lineno))
                counted.append(child)
            else:
                counted.append(_call_filter(_OUTPUT, child))
        node.nodes = counted
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(list(node.nodes), lineno=node.lineno)
        return _call_filter(_CONCAT, parts)


# String methods that build from a size: what each can build, charged before the call.
def _method_size(obj: str | bytes, name: str, args: tuple[Any, ...]) -> int | None:
    if name in ("center", "ljust", "rjust", "zfill") and args:
        return max(_int_arg(args[0]), len(obj))
    if name == "expandtabs":
        size = _int_arg(args[0]) if args else 8
        tabs = obj.count("\t") if isinstance(obj, str) else obj.count(b"\t")
        return len(obj) + tabs * size
    if name == "replace" and len(args) >= 2 and isinstance(obj, str):
        return replace_size(obj, str(args[0]), str(args[1]), args[2] if len(args) > 2 else -1)
    if name == "translate":
        raise _refuse("str.translate (its table can make each character any length)")
    return None


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox under a rendering budget (see the module's description)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        options.setdefault("optimized", False)  # no constant folding at compile time
        super().__init__(**options)
        self.globals.pop("lipsum", None)  # generates text of any size on request
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters.update(_INTERNAL)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        return super()._generate(_Metering().visit(source), name, filename, defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = meter()
        budget.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_SEQUENCE:
                        raise _refuse("building sequences this large")
                    budget.spend(len(seq) * max(times, 0))
            both_ints = isinstance(left, int) and isinstance(right, int)
            if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _refuse("integers this large")
        elif operator == "**" and isinstance(right, int) and isinstance(left, int):
            if abs(left) > 1 and (
                abs(right) > MAX_EXPONENT or left.bit_length() * right > MAX_INT_BITS
            ):
                raise _refuse("exponents this large")
        elif operator == "+":
            if isinstance(left, str | bytes | list | tuple) and isinstance(right, type(left)):
                budget.spend(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            budget.spend(percent_size(left, right))
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template: str = value.__self__
        is_map = value.__name__ == "format_map"

        def budgeted(*args: Any, **kwargs: Any) -> str:
            if is_map:
                mapping = args[0] if len(args) == 1 and isinstance(args[0], Mapping) else {}
                meter().spend(brace_size(template, (), mapping))
            else:
                meter().spend(brace_size(template, args, kwargs))
            return wrapper(*args, **kwargs)

        return budgeted

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        budget = meter()
        budget.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes):
            name = getattr(__obj, "__name__", "")
            size = _method_size(owner, name, args)
            if size is not None:
                budget.spend(size)
            elif name == "join" and args:
                items = list(_ticking(args[0]))
                budget.spend(
                    sum(_text_size(x) for x in items) + len(owner) * max(0, len(items) - 1)
                )
                args = (items, *args[1:])
        return _charge_result(super().call(__context, __obj, *args, **kwargs))
