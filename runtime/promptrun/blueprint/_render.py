"""Render PromptLayer templates: f-string and sandboxed jinja2 text, whole templates, provider kwargs.

f-string rules (PromptLayer style, not Python's ``str.format``):

- ``{name}`` is replaced with ``str(variables[name])`` (``None`` renders as ``""``). A name starts with a letter or ``_``
  and goes on with letters, digits and ``_``; single ``.`` or ``-`` may join such runs
  (``{user.name}``, ``{first-name}``). The whole name is one key of ``variables``: no attribute
  or index lookups.
- ``{{`` and ``}}`` are a literal ``{`` and ``}``, everywhere (as in Python), so a nested JSON
  object that closes with ``}}`` renders with one ``}``: write ``} }`` or escape every brace.
- Any other brace (JSON such as ``{"a": 1}``, ``{ spaced }``, ``{1}``) is left as it is.

Missing variables: by default each function raises :class:`MissingVariablesError` naming
every one. With ``on_missing`` (a callable), they render empty instead, as the PromptLayer SDK
renders them (f-string ``""``; jinja2 a chainable undefined, so ``{{ a.b }}`` and
``{{ a | upper }}`` are empty too), and ``on_missing`` gets their names once per call.

Everything here is copy-on-write: inputs are never mutated, unchanged sub-objects are shared,
and a template without variables comes back without copies.

Every rendering runs under a :class:`RenderBudget` (time and characters built; the default
when none is given) and raises :class:`RenderBudgetError` past it: an f-string's output is
counted as it is built, jinja2 templates are held to it by the sandbox's hooks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from promptrun.blueprint._budget import RenderBudget, meter, metered
from promptrun.blueprint._errors import MissingVariablesError, TemplateRenderError

__all__ = [
    "render_llm_kwargs",
    "render_prompt_template",
    "render_string",
    "renders_quickly",
    "variables_in",
]

Json = dict[str, Any]
Vars = Mapping[str, Any]
OnMissing: TypeAlias = Callable[[list[str]], object]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^\W\d]\w*(?:[.-]\w+)*)\}")
_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split f-string text into literals and names: ``lit0 name0 lit1 name1 ... litN``."""
    literals: list[str] = []
    names: list[str] = []
    buffer: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        buffer.append(text[pos : match.start()])
        name = match.group(1)
        if name is None:
            buffer.append(match.group()[0])
        else:
            literals.append("".join(buffer))
            buffer = []
            names.append(name)
        pos = match.end()
    if pos == 0:
        return (text,), ()
    buffer.append(text[pos:])
    literals.append("".join(buffer))
    return tuple(literals), tuple(names)


def _render_fstring(text: str, variables: Vars, missing: list[str] | None) -> str:
    """``missing``: None to raise on a missing name, else a list the missing names (rendered
    empty) are added to."""
    if "{" not in text and "}" not in text:
        return text
    literals, names = _parse(text)
    if not names:
        return literals[0]
    budget = meter()
    room = budget.room()
    out = [literals[0]]
    size = len(literals[0])
    absent = [n for n in names if n not in variables]
    if absent:
        if missing is None:
            raise MissingVariablesError(absent)
        missing.extend(absent)
    for i, name in enumerate(names):
        value = variables.get(name)
        if type(value) is not str:
            value = "" if value is None else str(value)
        out.append(value)
        out.append(literals[i + 1])
        size += len(value) + len(literals[i + 1])
        if size > room:
            break  # charged below, so the join never happens
    budget.spend(size)
    return "".join(out)


def render_string(
    text: str,
    variables: Vars | None,
    template_format: str | None = "f-string",
    *,
    budget: RenderBudget | None = None,
    on_missing: OnMissing | None = None,
) -> str:
    """Render one text with ``template_format`` ``"f-string"`` (the default) or ``"jinja2"``.

    Raises :class:`MissingVariablesError` naming every missing variable (unless
    ``on_missing``: see the module's docstring), for jinja2 :class:`TemplateSyntaxError` or
    :class:`UnsafeTemplateError` (sandbox violations), and :class:`RenderBudgetError` past
    ``budget`` (default: ``RenderBudget()``).
    """
    missing: list[str] | None = None if on_missing is None else []
    with metered(budget):
        out = _render_text(text, variables or {}, template_format, missing)
    _report(missing, on_missing)
    return out


def _report(missing: list[str] | None, on_missing: OnMissing | None) -> None:
    if missing and on_missing is not None:
        on_missing(list(dict.fromkeys(missing)))


def _render_text(
    text: str, variables: Vars, template_format: str | None, missing: list[str] | None
) -> str:
    if template_format == "jinja2":
        if "{" not in text:
            return text
        from promptrun.blueprint import _jinja

        return _jinja.render(text, variables, missing)
    if template_format not in (None, "f-string"):
        raise TemplateRenderError(
            f"Unknown template_format {template_format!r}: use 'f-string' or 'jinja2'."
        )
    return _render_fstring(text, variables, missing)


def renders_quickly(
    prompt_template: Mapping[str, Any], *, max_texts: int = 256, max_chars: int = 65_536
) -> bool:
    """Whether rendering the template is certainly cheap: f-string only (which cannot loop),
    at most ``max_texts`` texts of at most ``max_chars`` characters. Asking is cheap too: it
    stops looking after ``max_texts`` items."""
    if prompt_template.get("template_format") == "jinja2":
        return False
    seen = 0
    messages = prompt_template.get("messages")
    holders = messages if type(messages) is list else [prompt_template]
    for holder in holders:
        parts: list[Any]
        if type(holder) is dict:
            if holder.get("template_format") == "jinja2":
                return False
            content = holder.get("content")
            parts = content if type(content) is list else [content]
        else:
            parts = [holder]
        for part in parts:
            seen += 1
            text = part.get("text") if type(part) is dict else part
            if seen > max_texts or (isinstance(text, str) and len(text) > max_chars):
                return False
    return True


def variables_in(text: str, template_format: str | None = "f-string") -> list[str]:
    """The input variable names ``text`` uses (f-string: in order of first use; jinja2: sorted)."""
    if template_format == "jinja2":
        from promptrun.blueprint import _jinja

        return _jinja.variables_in(text)
    if "{" not in text:
        return []
    return list(dict.fromkeys(_parse(text)[1]))


class _Renderer:
    """One rendering pass: collects missing names so they are all reported together.

    ``blank``: missing names render empty (and are still collected).
    """

    __slots__ = ("blank", "fmt", "missing", "variables")

    def __init__(self, variables: Vars, fmt: str | None, blank: bool = False) -> None:
        self.variables = variables
        self.fmt = fmt
        self.blank = blank
        self.missing: list[str] = []

    def text(self, text: Any) -> Any:
        if not isinstance(text, str) or ("{" not in text and "}" not in text):
            return text
        if self.blank:
            return _render_text(text, self.variables, self.fmt, self.missing)
        try:
            return _render_text(text, self.variables, self.fmt, None)
        except MissingVariablesError as exc:
            self.missing.extend(exc.names)
            return text

    def part(self, part: Any) -> Any:
        """A content part (OpenAI, Anthropic, Google or blueprint shape) with its text rendered."""
        if type(part) is not dict:
            return self.text(part)
        kind = part.get("type")
        if kind is None or kind in _TEXT_TYPES:
            if kind is None and part.get("thought"):
                return part
            text = part.get("text")
            if text is None:
                response = part.get("function_response")
                if type(response) is dict:
                    return _cow_key(part, "function_response", response, self._function_response)
                return part
            new = self.text(text)
            return part if new is text else {**part, "text": new}
        if kind == "tool_result":
            return _cow_key(part, "content", part.get("content"), self.content)
        return part

    def _function_response(self, response: Json) -> Json:
        return _cow_key(response, "response", response.get("response"), self._result)

    def _result(self, value: Any) -> Any:
        if type(value) is dict and isinstance(value.get("result"), str):
            return _cow_key(value, "result", value["result"], self.text)
        return value

    def content(self, content: Any) -> Any:
        """A content value: a string, or a list of parts (copied only if some part changed)."""
        if isinstance(content, str):
            return self.text(content)
        if type(content) is not list:
            return content
        return _cow_list(content, self.part)

    def message(self, message: Any) -> Any:
        """A message or input item of any provider shape, with its text rendered."""
        if type(message) is not dict:
            return self.text(message)
        if "content" in message:
            return _cow_key(message, "content", message["content"], self.content)
        if "parts" in message:  # Google Content
            return _cow_key(message, "parts", message["parts"], self.content)
        if message.get("type") == "function_call_output":  # Responses tool result
            return _cow_key(message, "output", message.get("output"), self.content)
        return self.part(message)

    def messages(self, messages: Any) -> Any:
        if isinstance(messages, str):
            return self.text(messages)
        if type(messages) is not list:
            return messages
        return _cow_list(messages, self.message)

    def instruction(self, value: Any) -> Any:
        """A Google system_instruction: a string, a Content, a Part or a list of either."""
        if type(value) is dict and "parts" in value:
            return self.message(value)
        if type(value) is list:
            return _cow_list(value, self.part)
        return self.part(value)

    def generation_config(self, config: Any) -> Any:
        if type(config) is not dict:
            return config
        out = config
        for key in ("system_instruction", "systemInstruction"):
            if key in config:
                out = _cow_key(out, key, config[key], self.instruction)
        return out


def _cow_list(items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] | None = None
    for i, item in enumerate(items):
        new = fn(item)
        if out is None:
            if new is item:
                continue
            out = items[:i]
        out.append(new)
    return items if out is None else out


def _cow_key(obj: Json, key: str, value: Any, fn: Callable[[Any], Any]) -> Json:
    new = fn(value)
    return obj if new is value else {**obj, key: new}


def _placeholder(message: Json, variables: Vars, missing: list[str]) -> list[Any]:
    name = message.get("name")
    if not isinstance(name, str) or not name:
        raise TemplateRenderError("A placeholder message has no 'name' to take messages from.")
    if name not in variables:
        missing.append(name)
        return []
    value = variables[name]
    if not isinstance(value, list) or not all(isinstance(m, dict) and "role" in m for m in value):
        raise TemplateRenderError(
            f"Input variable {name!r} fills a placeholder, so it must be a list of messages "
            "(dicts with 'role' and 'content')."
        )
    return [
        {**m, "content": [{"type": "text", "text": m["content"]}]}
        if isinstance(m.get("content"), str)
        else m
        for m in value
    ]


def render_prompt_template(
    prompt_template: Json,
    variables: Vars | None,
    *,
    budget: RenderBudget | None = None,
    on_missing: OnMissing | None = None,
) -> Json:
    """A copy of a chat or completion template with every text part rendered.

    Each message uses its own ``template_format``; ``placeholder`` messages are replaced by
    the list of messages in ``variables[name]``. Missing variables anywhere in the template
    are reported together in one :class:`MissingVariablesError` (with ``on_missing``: they
    render empty, a placeholder with no messages, and ``on_missing`` gets their names). The
    whole template renders under one ``budget`` (default: ``RenderBudget()``), else
    :class:`RenderBudgetError`.
    """
    with metered(budget):
        return _render_template(prompt_template, variables or {}, on_missing)


def _render_template(prompt_template: Json, variables: Vars, on_missing: OnMissing | None) -> Json:
    blank = on_missing is not None
    missing: list[str] = []
    out = dict(prompt_template)
    messages = prompt_template.get("messages")
    if type(messages) is list:
        new_messages: list[Any] | None = None
        for i, message in enumerate(messages):
            if type(message) is dict and message.get("role") == "placeholder":
                replaced = _placeholder(message, variables, missing)
                if new_messages is None:
                    new_messages = messages[:i]
                new_messages.extend(replaced)
                continue
            renderer = _Renderer(
                variables, message.get("template_format") if type(message) is dict else None, blank
            )
            new = renderer.message(message)
            missing.extend(renderer.missing)
            if new_messages is None:
                if new is message:
                    continue
                new_messages = messages[:i]
            new_messages.append(new)
        if new_messages is not None:
            out["messages"] = new_messages
    if "content" in prompt_template:
        renderer = _Renderer(variables, prompt_template.get("template_format"), blank)
        out["content"] = renderer.content(prompt_template["content"])
        missing.extend(renderer.missing)
    if missing and not blank:
        raise MissingVariablesError(missing)
    _report(missing, on_missing)
    return out


_POSITIONS: dict[str, tuple[str, ...]] = {
    "openai": ("messages", "prompt", "input", "instructions"),
    "anthropic": ("system", "messages", "prompt"),
    "google": ("contents", "history", "system_instruction", "generation_config", "config"),
}
_ALL_POSITIONS = tuple(dict.fromkeys(k for keys in _POSITIONS.values() for k in keys))


def render_llm_kwargs(
    provider: str,
    llm_kwargs: Json,
    variables: Vars | None,
    template_format: str | None = "f-string",
    *,
    budget: RenderBudget | None = None,
    on_missing: OnMissing | None = None,
) -> Json:
    """Render the prompt text inside a provider call's kwargs; tools and schemas are untouched.

    Positions: OpenAI ``messages``, ``prompt``, Responses ``input`` and ``instructions``;
    Anthropic ``system`` and ``messages`` (tool results included); Google ``contents``,
    ``history`` and ``system_instruction`` (top level or in ``generation_config``).
    Returns ``llm_kwargs`` itself when nothing changed. Renders under one ``budget``;
    missing variables as :func:`render_prompt_template` treats them.
    """
    with metered(budget):
        return _render_kwargs(provider, llm_kwargs, variables or {}, template_format, on_missing)


def _render_kwargs(
    provider: str,
    llm_kwargs: Json,
    variables: Vars,
    template_format: str | None,
    on_missing: OnMissing | None,
) -> Json:
    renderer = _Renderer(variables or {}, template_format, on_missing is not None)
    family = provider.split(".", 1)[0] if provider else ""
    out = llm_kwargs
    for key in _POSITIONS.get(family, _ALL_POSITIONS):
        if key not in llm_kwargs:
            continue
        value = llm_kwargs[key]
        if key in ("generation_config", "config"):
            new = renderer.generation_config(value)
        elif key == "system_instruction":
            new = renderer.instruction(value)
        elif key == "system":
            new = renderer.content(value)
        elif key in ("prompt", "instructions"):
            new = _cow_list(value, renderer.text) if type(value) is list else renderer.text(value)
        else:
            new = renderer.messages(value)
        if new is not value:
            if out is llm_kwargs:
                out = dict(llm_kwargs)
            out[key] = new
    if renderer.missing and on_missing is None:
        raise MissingVariablesError(renderer.missing)
    _report(renderer.missing, on_missing)
    return out
