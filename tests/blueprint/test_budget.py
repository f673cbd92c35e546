"""The rendering budget: hostile templates stop with a clear error, real ones render.

Each hostile case would, unchecked, run for hours or try to build gigabytes; here each one is
stopped by a hook before the work is done (the per-test timeout would catch one that is not).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptrun import PromptLayerValidationError
from promptrun.blueprint import (
    RenderBudget,
    RenderBudgetError,
    TemplateRenderError,
    TemplateSyntaxError,
    UnsafeTemplateError,
    render_llm_kwargs,
    render_prompt_template,
    render_string,
)
from promptrun.workflows.nodes import NodeError
from promptrun.workflows.nodes.conditional import evaluate

BIG = "x" * 1000


def _jinja(text: str, variables: dict[str, Any] | None = None, **budget: Any) -> str:
    return render_string(text, variables or {}, "jinja2", budget=RenderBudget(**budget))


# Each runs away in time (a loop, recursion or repetition that does not end soon).
SLOW = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "{% set x %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}{% endset %}{{ x }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% if i == j %}{% endif %}"
    "{% endfor %}{% endfor %}",
    "{{ range(100000)|map('string')|map('center', 3)|join }}{% for i in range(100000) %}"
    "{% for j in range(100000) %}{{ j|abs }}{% endfor %}{% endfor %}",
]

# Each builds more than the size budget, in one go or by doubling.
LARGE = [
    "{{ 'x'|center(999999999) }}",
    "{{ x|center(999999999) }}",
    "{{ x|indent(999999999, true) }}",
    "{{ ('a\\n' * 100000)|indent(100000) }}",
    "{{ 'a'.ljust(999999999) }}",
    "{{ 'a'.zfill(999999999) }}",
    "{{ ('\\t' * 100000).expandtabs(1000000) }}",
    "{{ ('a' * 100000).replace('', 'x' * 100000) }}",
    "{{ ('a' * 100000)|replace('a', 'x' * 100000) }}",
    "{{ ('x' * 1000000).replace('x', 'yy') }}",
    "{{ ('y' * 100000)|join('z' * 100000) }}",
    "{{ ('z' * 100000).join(['a'] * 100000) }}",
    "{{ range(100000)|join('x' * 1000) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}"
    "{% endfor %}{{ ns.l|length }}",
    "{% for i in range(100000) %}{{ 'y' * 1000000 }}{% endfor %}",
    "{% for i in range(100000) %}" + "literal text repeated " * 100 + "{% endfor %}",
    "{% macro m() %}{{ caller() }}{{ caller() }}{% endmacro %}"
    "{% for i in range(100000) %}{% call m() %}{{ 'q' * 100000 }}{% endcall %}{% endfor %}",
    "{{ ('%(a)s' * 100000) % {'a': 'b' * 100000} }}",
    "{{ ('{0}' * 100000).format('b' * 100000) }}",
    "{{ [1]|batch(999999999, 0)|list }}",
    "{{ [1]|slice(999999999)|list }}",
    "{{ ('a ' * 100000)|wordwrap(1, wrapstring='w' * 100000) }}",
]

# Each is refused outright: a width, an integer or an operation the sandbox does not allow.
REFUSED = [
    "{{ '%999999999s' % 'x' }}",
    "{{ '%.999999999f' % 1 }}",
    "{{ '%*s' % (999999999, 'x') }}",
    "{{ '%s'|format(1) ~ '%0999999999d'|format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:.999999999f}'.format(1.5) }}",
    "{{ '{0:{1}}'.format(1, 999999999) }}",
    "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
    "{{ (10 ** 1000) ** 1000 }}",
    "{% set ns = namespace(n=10 ** 1000) %}{% for i in range(30) %}{% set ns.n = ns.n * ns.n %}"
    "{% endfor %}{{ ns.n > 0 }}",
    "{{ 'abc'.translate({97: 'x' * 100000}) }}",
    "{{ [[1]] * 1000|sum(start=[]) }}",
    "{{ ('a' * 10) * 999999999 }}",
]


@pytest.mark.parametrize("text", SLOW)
def test_a_template_that_runs_away_stops_at_the_time_budget(text: str) -> None:
    with pytest.raises(RenderBudgetError) as caught:
        _jinja(text, seconds=0.2)
    assert caught.value.budget == "time"
    assert caught.value.limit == 0.2
    assert "time budget of 0.2 s" in caught.value.message


@pytest.mark.parametrize("text", LARGE)
def test_a_template_that_builds_too_much_stops_before_building_it(text: str) -> None:
    with pytest.raises(RenderBudgetError) as caught:
        _jinja(text, {"x": BIG}, max_chars=1_000_000)
    assert caught.value.budget == "size"
    assert caught.value.limit == 1_000_000
    assert "size budget of 1,000,000 characters" in caught.value.message


@pytest.mark.parametrize("text", REFUSED)
def test_widths_huge_integers_and_amplifiers_are_refused_by_the_sandbox(text: str) -> None:
    with pytest.raises(UnsafeTemplateError, match=r"not allowed|budget"):
        _jinja(text)


def test_a_filter_with_constant_arguments_is_not_run_while_compiling() -> None:
    # jinja2 folds constant filters at compile time, where no budget applies; not here.
    with pytest.raises(RenderBudgetError):
        _jinja("{{ 'x'|center(999999999) }}{{ 'y'|indent(999999999, true) }}")


def test_real_templates_render_as_before() -> None:
    text = (
        "{% for m in messages %}{{ loop.index }}. {{ m.role|upper }}: {{ m.text|trim }}\n"
        "{% endfor %}{{ names|join(', ') }} {{ '%-6s|%5.1f' % ('ab', 2.25) }} "
        "{{ '{:>8}'.format(total) }} {{ note|wordwrap(20) }}{{ 'x'|center(9) }}"
        "{% macro tag(x) %}<{{ x }}>{% endmacro %}{{ tag('b') }}{{ (items * 2)|length }}"
    )
    variables = {
        "messages": [{"role": "user", "text": " hi "}, {"role": "assistant", "text": "yo"}],
        "names": ["Ada", "Alan"],
        "total": 42,
        "note": "a short note that wraps",
        "items": [1, 2, 3],
    }
    assert render_string(text, variables, "jinja2") == (
        "1. USER: hi\n2. ASSISTANT: yo\nAda, Alan ab    |  2.2       42 a short note that\n"
        "wraps    x    <b>6"
    )


def test_a_large_input_fits_the_default_budget() -> None:
    document = "word " * 1_000_000  # 5 MB
    out = render_string("{{ doc }}\n---\n{{ doc|upper }}", {"doc": document}, "jinja2")
    assert len(out) == 2 * len(document) + 5
    assert render_string("{doc}{doc}", {"doc": document}) == document * 2


def test_an_fstring_that_repeats_a_large_variable_stops_at_the_size_budget() -> None:
    with pytest.raises(RenderBudgetError) as caught:
        render_string("{x}" * 10_000, {"x": "y" * 10_000}, budget=RenderBudget(max_chars=10**6))
    assert caught.value.budget == "size"


def test_fstring_width_specs_are_literal_text_not_formatting() -> None:
    # PromptLayer f-strings replace {name} only: a format spec is text, never a width.
    text = "{name:>999999999} and {name!r:>{width}}"
    out = render_string(text, {"name": "Ada", "width": 10**9})
    assert out == "{name:>999999999} and {name!r:>1000000000}"


def test_one_template_shares_one_budget_across_its_messages() -> None:
    half = "{{ x }}"
    template = {
        "type": "chat",
        "messages": [
            {"role": "system", "template_format": "jinja2", "content": [{"type": "text", "text": half}]},
            {"role": "user", "template_format": "jinja2", "content": [{"type": "text", "text": half}]},
        ],
    }  # fmt: skip
    variables = {"x": "z" * 600}
    assert render_prompt_template(template, variables, budget=RenderBudget(max_chars=1500))
    with pytest.raises(RenderBudgetError):
        render_prompt_template(template, variables, budget=RenderBudget(max_chars=1000))


def test_provider_kwargs_render_under_a_budget_too() -> None:
    kwargs = {"messages": [{"role": "user", "content": "{x}{x}{x}"}]}
    with pytest.raises(RenderBudgetError):
        render_llm_kwargs("openai", kwargs, {"x": "a" * 500}, budget=RenderBudget(max_chars=1000))


def test_after_a_render_runs_out_of_budget_the_next_one_has_its_own() -> None:
    with pytest.raises(RenderBudgetError):
        _jinja(SLOW[0], seconds=0.05)
    assert render_string("{{ 1 + 1 }}", {}, "jinja2") == "2"


def test_budget_errors_are_validation_errors_that_can_name_their_template() -> None:
    with pytest.raises(RenderBudgetError) as caught:
        _jinja(LARGE[0], max_chars=100)
    named = caught.value.naming("prompt template 'greet' (version 3)")
    assert isinstance(named, PromptLayerValidationError)
    assert isinstance(named, UnsafeTemplateError)
    assert named.message.startswith("prompt template 'greet' (version 3): rendering would build")
    assert (named.budget, named.limit) == ("size", 100)


def test_a_template_with_too_many_tags_is_refused_before_compiling() -> None:
    with pytest.raises(UnsafeTemplateError, match="2,000"):
        _jinja("{{ x }}" * 2_001, {"x": 1})


def test_compiling_a_large_template_does_not_count_against_its_time_budget() -> None:
    text = "{% for i in items %}{% if i %}{{ i|upper }}{% endif %}{% endfor %}" * 399
    assert _jinja(text, {"items": ["a"]}, seconds=0.05) == "A" * 399


def test_nesting_deeper_than_the_compiler_goes_is_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="nested too deeply"):
        _jinja("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")


@pytest.mark.parametrize(
    "expression",
    ["range(100000)|map('string')|join|length > 0 and (range(100000)|list|length) "
     "* (range(100000)|sum) > 0 and ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) "
     "~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) "
     "~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) "
     "~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) "
     "~ ('x' * 1000000) ~ ('x' * 1000000) != ''",
     "x|center(999999999)"],
)  # fmt: skip
def test_a_workflow_condition_is_held_to_the_budget(expression: str) -> None:
    with pytest.raises(NodeError, match="budget"):
        evaluate(expression, {"x": "a"})


# -- fuzzing: whatever a template does, rendering ends within its budget -------------------

_NUMBERS = st.sampled_from([0, 1, 3, 80, 10_000, 100_000, 10**6, 10**9])
_VALUES = st.sampled_from(["x", "'ab'", "'%s%s'", "'{0}{0}'", "items", "n", "(x * 1000)"])


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 0) -> str:
    value = draw(_VALUES)
    if depth > 2:
        return value
    number = draw(_NUMBERS)
    inner = draw(_expressions(depth=depth + 1))
    shape = draw(
        st.sampled_from(
            [
                "{v}", "({v} * {n})", "({v} ~ {i})", "({v} + {i})", "{v}|center({n})",
                "{v}|indent({n}, true)", "{v}|join({i})", "{v}|replace('', {i})",
                "{v}|wordwrap({n})", "({v}|string).ljust({n})", "'%{n}s' % {v}",
                "'{{:>{n}}}'.format({v})", "{v}|format({i})", "range({n})|join({v})",
                "{v}|batch({n}, 0)|list", "({v}|string).expandtabs({n})",
                "{v}|truncate({n})", "{v}|upper", "{v}|tojson",
            ]
        )
    )  # fmt: skip
    return shape.format(v=value, n=number, i=inner)


@st.composite
def _templates(draw: st.DrawFn) -> str:
    body = "{{ " + draw(_expressions()) + " }}"
    for _ in range(draw(st.integers(0, 2))):
        loop = draw(st.sampled_from(["range({n})", "items", "x", "range({n})|list"]))
        body = "{% for i in " + loop.format(n=draw(_NUMBERS)) + " %}" + body + "{% endfor %}"
    if draw(st.booleans()):
        body = "{% set s %}" + body + "{% endset %}{{ s }}{{ s }}"
    return body


FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(_templates())
def test_fuzzed_templates_end_within_the_budget_or_fail_cleanly(text: str) -> None:
    budget = RenderBudget(seconds=0.05, max_chars=200_000)
    try:
        out = render_string(
            text, {"x": "ab\tc", "items": [1, 2, 3], "n": 7}, "jinja2", budget=budget
        )
    except TemplateRenderError:
        return  # budget, sandbox, or the template's own error: all say what was wrong
    assert len(out) <= budget.max_chars


@FUZZ
@given(
    st.lists(st.sampled_from(["{a}", "{b}", "text ", "{{", "}}", "{c:>999999999}"]), max_size=60),
    st.integers(0, 50_000),
)
def test_fuzzed_fstrings_stay_within_the_size_budget(parts: list[str], size: int) -> None:
    budget = RenderBudget(max_chars=100_000)
    variables = {"a": "a" * size, "b": [1] * 10, "c": 1}
    try:
        out = render_string("".join(parts), variables, budget=budget)
    except RenderBudgetError as exc:
        over = exc
    else:
        assert len(out) <= budget.max_chars + len("".join(parts))
        return
    assert over.budget == "size"


@pytest.mark.parametrize(
    ("template", "quick"),
    [
        ({"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "{x}"}]}]}, True),
        ({"type": "completion", "content": [{"type": "text", "text": "hi {x}"}]}, True),
        ({"type": "chat", "messages": [{"role": "user", "template_format": "jinja2", "content": "{{ x }}"}]}, False),
        ({"type": "completion", "template_format": "jinja2", "content": [{"type": "text", "text": "x"}]}, False),
        ({"type": "chat", "messages": [{"role": "user", "content": "y" * 70_000}]}, False),
        ({"type": "chat", "messages": ["z" * 70_000]}, False),
        ({"type": "chat", "messages": [{"role": "user", "content": "{x}"}] * 300}, False),
        ({"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}] * 300}]}, False),
    ],
)  # fmt: skip
def test_only_small_fstring_templates_count_as_quick_to_render(
    template: dict[str, Any], quick: bool
) -> None:
    from promptrun.blueprint import renders_quickly

    assert renders_quickly(template) is quick
