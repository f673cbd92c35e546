"""The blueprint of a ``log_request()`` call: what the caller sent, as one prompt template.

Pure, and shared: the server stores it, and the client returns it as ``prompt_version`` at once,
as the PromptLayer API's answer to ``/log-request`` carries it.
"""

from __future__ import annotations

from typing import Any

from promptrun._errors import PromptLayerValidationError

__all__ = ["log_request_blueprint"]


def _kind(template: Any, which: str) -> str:
    kind = template.get("type") if isinstance(template, dict) else None
    key = "messages" if kind == "chat" else "content"
    if kind not in ("chat", "completion") or not isinstance(template.get(key), list):
        raise PromptLayerValidationError(
            f"{which} must be a prompt template: "
            '{"type": "chat", "messages": [...]} or {"type": "completion", "content": [...]}'
        )
    return str(kind)


def _conversation(given: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The input template with the output appended, in the input's own type."""
    if _kind(given, "input") == "chat":
        if _kind(answer, "output") == "chat":
            replies = list(answer["messages"])
        else:
            replies = [{"role": "assistant", "content": list(answer["content"])}]
        return {**given, "messages": [*given["messages"], *replies]}
    if _kind(answer, "output") == "completion":
        tail = list(answer["content"])
    else:
        tail = [part for m in answer["messages"] for part in (m.get("content") or ())]
    return {**given, "content": [*given["content"], *tail]}


def log_request_blueprint(
    provider: str,
    model: str,
    parameters: dict[str, Any] | None,
    api_type: str | None,
    input: dict[str, Any],
    output: dict[str, Any],
) -> dict[str, Any]:
    """``{"prompt_template": input + output, "metadata": {"model": ...}}``.

    Raises :class:`~promptrun.PromptLayerValidationError` when ``input`` or ``output`` is not a
    prompt template.
    """
    model_info: dict[str, Any] = {
        "provider": provider,
        "name": model,
        "parameters": parameters or {},
    }
    if api_type:
        model_info["api_type"] = api_type
    return {"prompt_template": _conversation(input, output), "metadata": {"model": model_info}}
