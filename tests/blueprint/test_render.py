"""Rendering: f-string and jinja2 text, whole templates, provider kwargs."""

from __future__ import annotations

import contextlib
import copy
import string
import timeit
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptrun import PromptLayerValidationError
from promptrun.blueprint import (
    MissingVariablesError,
    TemplateRenderError,
    TemplateSyntaxError,
    UnsafeTemplateError,
    render_llm_kwargs,
    render_prompt_template,
    render_string,
    variables_in,
)

# -- f-string ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("Hi {name}", {"name": "Ada"}, "Hi Ada"),
        ("{a}{b}{a}", {"a": 1, "b": None}, "11"),  # None renders empty, as in the peer SDK
        (
            "{user.name} / {first-name} / {_x1}",
            {"user.name": "u", "first-name": "f", "_x1": 2},
            "u / f / 2",
        ),
        ('JSON {"a": 1} stays', {}, 'JSON {"a": 1} stays'),
        ("{{literal}} and {{ {name} }}", {"name": "n"}, "{literal} and { n }"),
        ("{ spaced } {1} {} {", {}, "{ spaced } {1} {} {"),
        ("lone } brace", {}, "lone } brace"),
        ("unicode {prénom}", {"prénom": "Zoë"}, "unicode Zoë"),
        # `}}` is always an escaped brace, so a nested JSON object loses one closing brace
        ('nested {"a": {"b": {x}}}', {"x": 2}, 'nested {"a": {"b": 2}'),
        ('nested {"a": {"b": {x}} }', {"x": 2}, 'nested {"a": {"b": 2} }'),
        ("", {}, ""),
    ],
)
def test_fstring_renders_variables_and_leaves_other_braces(
    text: str, variables: dict[str, Any], expected: str
) -> None:
    assert render_string(text, variables) == expected


def test_fstring_missing_variables_are_all_named_in_order_of_use() -> None:
    with pytest.raises(MissingVariablesError) as info:
        render_string("{b} {a} {present} {b} {c}", {"present": 1})
    assert info.value.names == ["b", "a", "c"]
    message = str(info.value)
    assert "'a'" in message
    assert "'b'" in message
    assert "'c'" in message
    assert "input_variables" in message


def test_missing_variables_error_is_a_validation_error() -> None:
    with pytest.raises(PromptLayerValidationError):
        render_string("{x}", {})


def test_unknown_template_format_is_rejected() -> None:
    with pytest.raises(TemplateRenderError, match="mustache"):
        render_string("{x}", {"x": 1}, "mustache")


def test_variables_in_lists_fstring_names_once_in_order() -> None:
    assert variables_in("{b} {a} {{c}} {b} {d.e}") == ["b", "a", "d.e"]
    assert variables_in("no braces") == []


def test_text_without_braces_comes_back_as_the_same_object() -> None:
    text = "plain text " * 10
    assert render_string(text, {"x": 1}) is text


def test_rendering_a_cached_fstring_takes_a_few_microseconds() -> None:
    text = 'You are {persona}. Answer {name} about {topic} in JSON like {"a": 1}.'
    variables = {"persona": "a bot", "name": "Ada", "topic": "math"}
    render_string(text, variables)
    runs = 20_000
    per_call = timeit.timeit(lambda: render_string(text, variables), number=runs) / runs
    assert per_call < 20e-6, f"{per_call * 1e6:.2f} µs per render"


_no_braces = st.text(alphabet=st.characters(blacklist_characters="{}"))
_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@given(_no_braces)
def test_any_text_without_braces_renders_unchanged(text: str) -> None:
    assert render_string(text, {}) == text
    assert render_string(text, {}, "jinja2") == text


@given(_no_braces)
def test_doubled_braces_render_as_single_braces(text: str) -> None:
    escaped = "{{" + text.replace("x", "}}") + "}}"
    assert render_string(escaped, {}) == "{" + text.replace("x", "}") + "}"


@given(st.lists(st.tuples(_no_braces, _names), max_size=6), _no_braces)
def test_rendering_with_all_variables_present_never_raises(
    pieces: list[tuple[str, str]], tail: str
) -> None:
    text = "".join(f"{lit}{{{name}}}" for lit, name in pieces) + tail
    variables = {name: f"<{name}>" for _, name in pieces}
    expected = "".join(f"{lit}<{name}>" for lit, name in pieces) + tail
    assert render_string(text, variables) == expected


@given(st.text(alphabet=string.printable), st.dictionaries(_names, st.text(max_size=5)))
def test_fstring_rendering_either_succeeds_or_names_what_is_missing(
    text: str, variables: dict[str, str]
) -> None:
    missing: list[str] = []
    try:
        render_string(text, variables)
    except MissingVariablesError as exc:
        missing = exc.names
        assert missing, "a MissingVariablesError names at least one variable"
    assert not set(missing) & set(variables)


# -- jinja2 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("Hi {{ name }}", {"name": "Ada"}, "Hi Ada"),
        ("{% for i in items %}{{ i }},{% endfor %}", {"items": [1, 2]}, "1,2,"),
        ("{% if x is defined %}{{ x }}{% else %}none{% endif %}", {}, "none"),
        ("{{ d.k }} {{ d['k'] }}", {"d": {"k": "v"}}, "v v"),
        ("<b>{{ html }}</b>", {"html": "<i>&</i>"}, "<b><i>&</i></b>"),
        ("keeps trailing newline\n", {}, "keeps trailing newline\n"),
        ('{"json": 1} {{ n }}', {"n": 2}, '{"json": 1} 2'),
    ],
)
def test_jinja2_renders_with_autoescape_off(
    text: str, variables: dict[str, Any], expected: str
) -> None:
    assert render_string(text, variables, "jinja2") == expected


def test_jinja2_missing_variables_are_all_named() -> None:
    text = "{{ a }} {{ b.c }} {% for i in d %}{{ i }}{% endfor %} {{ present }} {{ a }}"
    with pytest.raises(MissingVariablesError) as info:
        render_string(text, {"present": 1}, "jinja2")
    assert info.value.names == ["a", "b", "d"]


def test_with_on_missing_fstring_missing_variables_render_empty_and_are_named_once() -> None:
    seen: list[list[str]] = []
    out = render_string("{b} {a} {present} {b}!", {"present": 1}, on_missing=seen.append)
    assert out == "  1 !"
    assert seen == [["b", "a"]]


def test_with_on_missing_jinja2_missing_variables_render_empty_and_chain() -> None:
    seen: list[list[str]] = []
    text = "[{{ a }}|{{ b.c.d }}|{{ e | upper }}|{% for i in f %}{{ i }}{% endfor %}|{{ p }}]"
    out = render_string(text, {"p": "P"}, "jinja2", on_missing=seen.append)
    assert out == "[||||P]"
    assert seen == [["a", "b", "e", "f"]]


def test_with_on_missing_a_complete_set_of_variables_reports_nothing() -> None:
    seen: list[list[str]] = []
    assert render_string("{a}", {"a": "x"}, on_missing=seen.append) == "x"
    assert render_string("{{ a }}", {"a": "x"}, "jinja2", on_missing=seen.append) == "x"
    assert seen == []


def test_with_on_missing_a_template_renders_empty_variables_and_reports_them_together() -> None:
    seen: list[list[str]] = []
    out = render_prompt_template(_chat_template(), {"unit": "kg"}, on_missing=seen.append)
    assert seen == [["persona", "name", "history"]]
    texts = [p["text"] for m in out["messages"] for p in m["content"] if p.get("type") == "text"]
    assert not any("{" in t for t in texts)
    assert all(m["role"] != "placeholder" for m in out["messages"])


def test_with_on_missing_provider_kwargs_render_empty_variables() -> None:
    seen: list[list[str]] = []
    kwargs = {"messages": [{"role": "user", "content": "Hi {name}."}]}
    out = render_llm_kwargs("openai", kwargs, {}, on_missing=seen.append)
    assert out["messages"][0]["content"] == "Hi ."
    assert seen == [["name"]]


def test_with_on_missing_jinja2_errors_other_than_missing_names_still_raise() -> None:
    with pytest.raises(TemplateRenderError, match="ZeroDivisionError"):
        render_string("{{ a }}{{ 1 / 0 }}", {}, "jinja2", on_missing=lambda names: None)


def test_jinja2_names_only_tested_with_is_defined_are_not_missing() -> None:
    text = "{% if opt is defined %}{{ opt }}{% endif %}{{ need }}"
    with pytest.raises(MissingVariablesError) as info:
        render_string(text, {}, "jinja2")
    assert info.value.names == ["need"]


def test_jinja2_missing_key_of_a_given_value_is_a_render_error_not_missing_variable() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_string("{{ d.nope }}", {"d": {}}, "jinja2")
    assert not isinstance(info.value, MissingVariablesError)


def test_jinja2_syntax_errors_say_where() -> None:
    with pytest.raises(TemplateSyntaxError, match="line 2"):
        render_string("ok\n{% for %}", {}, "jinja2")


def test_jinja2_runtime_errors_become_render_errors() -> None:
    with pytest.raises(TemplateRenderError, match="ZeroDivisionError"):
        render_string("{{ 1 / 0 }}", {}, "jinja2")


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ (''|attr('__class__')|attr('__mro__'))[1] }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ obj.__dict__ }}",
        "{{ obj.method.__func__.__globals__ }}",
        "{{ 'x' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 9 ** 99999999 }}",
        "{{ range(10 ** 8) | list }}",
        "{% set l = [] %}{{ l.append(1) }}",
        "{% set d = {} %}{{ d.update({'a': 1}) }}",
    ],
)
def test_jinja2_sandbox_escapes_raise_unsafe_template_error(text: str) -> None:
    class Obj:
        def method(self) -> None:
            return None

    with pytest.raises(UnsafeTemplateError):
        render_string(text, {"obj": Obj()}, "jinja2")


def test_jinja2_lookups_on_a_missing_variable_report_the_variable() -> None:
    with pytest.raises(MissingVariablesError) as info:
        render_string("{{ x.__class__ }}{{ y['k'] }}", {}, "jinja2")
    assert info.value.names == ["x", "y"]


def test_variables_in_jinja2_lists_undeclared_names_sorted() -> None:
    text = "{% set local = 1 %}{{ b }}{{ a.x }}{{ local }}{% for i in c %}{{ i }}{% endfor %}"
    assert variables_in(text, "jinja2") == ["a", "b", "c"]


def test_import_of_blueprint_does_not_import_jinja2() -> None:
    import subprocess
    import sys

    code = (
        "import sys, promptrun.blueprint as b; b.render_string('{x}', {'x': 1}); "
        "print(sorted(m for m in ('jinja2', 'openai', 'anthropic', 'google.genai') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- whole templates -----------------------------------------------------------------------


def _chat_template() -> dict[str, Any]:
    return {
        "type": "chat",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "You are {persona}."}],
                "input_variables": ["persona"],
                "template_format": "f-string",
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi {{ name }}", "extra": "kept"},
                    {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
                ],
                "template_format": "jinja2",
            },
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "{not rendered}", "signature": "s"}],
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {
                "role": "tool",
                "content": [{"type": "text", "text": "42 {unit}"}],
                "tool_call_id": "call_1",
            },
            {"role": "placeholder", "name": "history"},
            {"role": "user", "content": [{"type": "text", "text": "static"}], "custom": {"x": 1}},
        ],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"properties": {"q": {}}}}}
        ],
        "input_variables": ["persona", "name", "unit"],
        "unknown_key": "preserved",
    }


def test_render_prompt_template_renders_each_message_with_its_own_format() -> None:
    template = _chat_template()
    history = [{"role": "user", "content": "earlier {not a variable}"}]
    out = render_prompt_template(
        template, {"persona": "a bot", "name": "Ada", "unit": "kg", "history": history}
    )
    messages = out["messages"]
    assert messages[0]["content"][0]["text"] == "You are a bot."
    assert messages[1]["content"][0] == {"type": "text", "text": "Hi Ada", "extra": "kept"}
    assert messages[2]["content"][0]["thinking"] == "{not rendered}"
    assert messages[3]["content"][0]["text"] == "42 kg"
    assert messages[4] == {
        "role": "user",
        "content": [{"type": "text", "text": "earlier {not a variable}"}],
    }
    assert messages[5]["custom"] == {"x": 1}
    assert out["unknown_key"] == "preserved"
    assert len(messages) == 6


def test_render_prompt_template_shares_unchanged_parts_and_never_mutates_input() -> None:
    template = _chat_template()
    before = copy.deepcopy(template)
    out = render_prompt_template(
        template, {"persona": "p", "name": "n", "unit": "u", "history": []}
    )
    assert template == before
    assert out is not template
    assert out["messages"][2] is template["messages"][2]
    assert out["messages"][4] is template["messages"][5]
    assert out["tools"] is template["tools"]
    assert out["messages"][1]["content"][1] is template["messages"][1]["content"][1]


def test_render_prompt_template_reports_missing_names_across_messages_together() -> None:
    with pytest.raises(MissingVariablesError) as info:
        render_prompt_template(_chat_template(), {"unit": "kg"})
    assert info.value.names == ["persona", "name", "history"]


def test_placeholder_must_hold_a_list_of_messages() -> None:
    with pytest.raises(TemplateRenderError, match="list of messages"):
        render_prompt_template(
            _chat_template(), {"persona": "p", "name": "n", "unit": "u", "history": "text"}
        )


def test_template_without_variables_keeps_its_message_list() -> None:
    template: dict[str, Any] = {
        "type": "chat",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "static"}]}],
    }
    out = render_prompt_template(template, None)
    assert out["messages"] is template["messages"]


def test_completion_template_renders_its_content_with_its_format() -> None:
    template: dict[str, Any] = {
        "type": "completion",
        "content": [{"type": "text", "text": "Say {{ word }}"}],
        "template_format": "jinja2",
        "input_variables": ["word"],
    }
    out = render_prompt_template(template, {"word": "hi"})
    assert out["content"] == [{"type": "text", "text": "Say hi"}]
    assert template["content"][0]["text"] == "Say {{ word }}"


_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant"]),
        "content": st.lists(
            st.fixed_dictionaries({"type": st.just("text"), "text": st.text(alphabet="ab{}x ")}),
            max_size=3,
        ),
    }
)


@settings(max_examples=200)
@given(st.lists(_message, max_size=4))
def test_rendering_a_template_never_mutates_it(messages: list[dict[str, Any]]) -> None:
    template = {"type": "chat", "messages": messages}
    before = copy.deepcopy(template)
    with contextlib.suppress(MissingVariablesError):
        render_prompt_template(template, {"x": "X"})
    assert template == before


# -- provider kwargs -----------------------------------------------------------------------


def test_render_llm_kwargs_renders_openai_positions_and_leaves_tools_alone() -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "{x}"}}]
    kwargs: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "S {x}"},
            {"role": "user", "content": [{"type": "text", "text": "U {x}"}, {"type": "image_url"}]},
            {"role": "assistant", "content": None},
        ],
        "tools": tools,
    }
    out = render_llm_kwargs("openai", kwargs, {"x": 1}, "f-string")
    assert out["messages"][0]["content"] == "S 1"
    assert out["messages"][1]["content"][0]["text"] == "U 1"
    assert out["messages"][2] is kwargs["messages"][2]
    assert out["tools"] is tools
    assert kwargs["messages"][0]["content"] == "S {x}"


def test_render_llm_kwargs_renders_responses_input_and_instructions() -> None:
    kwargs: dict[str, Any] = {
        "model": "m",
        "instructions": "be {tone}",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi {x}"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"a": {x}}'},
            {"type": "function_call_output", "call_id": "c", "output": "got {x}"},
        ],
    }
    out = render_llm_kwargs("openai", kwargs, {"x": 1, "tone": "brief"}, "f-string")
    assert out["instructions"] == "be brief"
    assert out["input"][0]["content"][0]["text"] == "hi 1"
    assert out["input"][1] is kwargs["input"][1]
    assert out["input"][2]["output"] == "got 1"


def test_render_llm_kwargs_renders_anthropic_system_blocks_and_tool_results() -> None:
    kwargs: dict[str, Any] = {
        "model": "m",
        "system": [{"type": "text", "text": "S {{ x }}"}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "text", "text": "R {{ x }}"}],
                    },
                    {"type": "text", "text": "U {{ x }}"},
                ],
            },
        ],
        "tools": [{"name": "f", "input_schema": {"description": "{{ x }}"}}],
    }
    out = render_llm_kwargs("anthropic", kwargs, {"x": 1}, "jinja2")
    assert out["system"] == [{"type": "text", "text": "S 1"}]
    assert out["messages"][0]["content"][0]["content"][0]["text"] == "R 1"
    assert out["messages"][0]["content"][1]["text"] == "U 1"
    assert out["tools"] is kwargs["tools"]


def test_render_llm_kwargs_renders_google_history_and_system_instruction() -> None:
    kwargs: dict[str, Any] = {
        "model": "gemini",
        "history": [
            {"role": "user", "parts": [{"text": "hi {x}"}]},
            {"role": "model", "parts": [{"text": "{x} thought", "thought": True}]},
            {
                "role": "user",
                "parts": [{"function_response": {"name": "f", "response": {"result": "r {x}"}}}],
            },
        ],
        "generation_config": {
            "temperature": 0,
            "system_instruction": {"parts": [{"text": "sys {x}"}]},
        },
    }
    out = render_llm_kwargs("google", kwargs, {"x": 1}, "f-string")
    assert out["history"][0]["parts"][0]["text"] == "hi 1"
    assert out["history"][1] is kwargs["history"][1]
    assert out["history"][2]["parts"][0]["function_response"]["response"]["result"] == "r 1"
    assert out["generation_config"]["system_instruction"]["parts"][0]["text"] == "sys 1"
    assert kwargs["history"][0]["parts"][0]["text"] == "hi {x}"


def test_render_llm_kwargs_returns_unchanged_kwargs_as_the_same_object() -> None:
    kwargs = {"model": "m", "messages": [{"role": "user", "content": "no variables"}]}
    assert render_llm_kwargs("openai", kwargs, {}, "f-string") is kwargs


def test_render_llm_kwargs_reports_every_missing_name() -> None:
    kwargs = {"model": "m", "prompt": "{a} {b}", "messages": [{"role": "user", "content": "{c}"}]}
    with pytest.raises(MissingVariablesError) as info:
        render_llm_kwargs("openai", kwargs, {}, "f-string")
    assert info.value.names == ["c", "a", "b"]
