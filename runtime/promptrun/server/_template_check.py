"""Checks a published prompt template before it is stored: shape, then that its text parses.

A template is stored as given (unknown keys kept, for what newer clients send); only what the
server itself reads is checked, with a message naming the place, e.g.
``prompt_template.messages[1].content[0].text``.
"""

from __future__ import annotations

from typing import Any

from promptrun import blueprint as bp
from promptrun.server._http import ApiError

__all__ = ["check_metadata", "check_prompt_template"]

_ROLES = frozenset({"system", "user", "assistant", "function", "tool", "placeholder", "developer"})
_FORMATS = ("f-string", "jinja2")


def _fail(where: str, problem: str) -> ApiError:
    return ApiError(400, f"{where} {problem}")


def _format(obj: dict[str, Any], where: str, default: str) -> str:
    fmt = obj.get("template_format", default)
    if fmt is None:
        return default
    if fmt not in _FORMATS:
        raise _fail(f"{where}.template_format", f'must be "f-string" or "jinja2", not {fmt!r}')
    return str(fmt)


def _content(content: Any, where: str, fmt: str) -> None:
    if not isinstance(content, list):
        raise _fail(where, 'must be a list of content parts like {"type": "text", ...}')
    for i, part in enumerate(content):
        here = f"{where}[{i}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _fail(here, 'must be an object with a "type", like {"type": "text", "text": ...}')
        if part["type"] == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _fail(f"{here}.text", "must be a string")
            try:
                bp.variables_in(text, fmt)
            except bp.TemplateRenderError as exc:
                raise _fail(f"{here}.text", f"is not valid {fmt}: {exc}") from None


def _message(message: Any, where: str, fmt: str) -> None:
    if not isinstance(message, dict):
        raise _fail(where, "must be an object with a role")
    role = message.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise _fail(f"{where}.role", f"must be one of {', '.join(sorted(_ROLES))}; got {role!r}")
    if role == "placeholder":
        if not isinstance(message.get("name"), str):
            raise _fail(f"{where}.name", "must name the input variable the placeholder expands")
        return
    fmt = _format(message, where, fmt)
    if "content" in message and message["content"] is not None:
        _content(message["content"], f"{where}.content", fmt)


def check_prompt_template(template: dict[str, Any], where: str = "prompt_template") -> None:
    """Raise a 400 :class:`ApiError` naming the first problem in a prompt template."""
    kind = template.get("type")
    if kind not in ("chat", "completion"):
        raise _fail(f"{where}.type", f'must be "chat" or "completion", not {kind!r}')
    fmt = _format(template, where, "f-string")
    if kind == "completion":
        _content(template.get("content"), f"{where}.content", fmt)
    else:
        messages = template.get("messages")
        if not isinstance(messages, list):
            raise _fail(f"{where}.messages", "must be a list of messages")
        for i, message in enumerate(messages):
            _message(message, f"{where}.messages[{i}]", fmt)
    for key in ("tools", "functions", "input_variables"):
        if template.get(key) is not None and not isinstance(template[key], list):
            raise _fail(f"{where}.{key}", "must be a list")


def check_metadata(metadata: dict[str, Any], where: str = "metadata") -> None:
    """Raise a 400 when ``metadata.model`` is present but not ``{provider, name, parameters}``."""
    model = metadata.get("model")
    if model is None:
        return
    if not isinstance(model, dict):
        raise _fail(f"{where}.model", "must be an object: {provider, name, parameters}")
    for key in ("provider", "name"):
        if not isinstance(model.get(key), str) or not model[key]:
            raise _fail(f"{where}.model.{key}", "must be a non-empty string")
    if model.get("parameters") is not None and not isinstance(model["parameters"], dict):
        raise _fail(f"{where}.model.parameters", "must be an object")
