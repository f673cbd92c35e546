"""Prompt nodes: run a registry prompt (by name, version or label) with the node's inputs.

The host runs it exactly like ``run()`` and logs it like any request, linked to the workflow
execution; this module turns the model's answer into the node's value: its text (``"text"``,
the default), its text parsed as JSON (``"json"``), or the whole output message
(``"message"``, a blueprint message, for tool calls).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from promptrun.workflows.definition import PromptTemplateConfig
from promptrun.workflows.nodes._base import NodeContext, NodeError, NodeOutcome, NodeServices

__all__ = ["message_text", "run_prompt"]

logger = logging.getLogger("promptlayer")


def message_text(message: Any) -> str:
    """The text parts of a blueprint message, joined."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        str(part.get("text", ""))
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )


async def run_prompt(
    ctx: NodeContext, config: PromptTemplateConfig, services: NodeServices
) -> NodeOutcome:
    message, request_id = await services.run_prompt(ctx, config)
    if config.output == "message":
        return NodeOutcome(value=message, request_id=request_id)
    text = message_text(message)
    if config.output == "text":
        return NodeOutcome(value=text, request_id=request_id)
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise NodeError(
            f"prompt {config.prompt_name!r} answered text that is not JSON "
            f"(output is 'json'): {text[:200]!r}",
            str(exc),
        ) from None
    return NodeOutcome(value=value, request_id=request_id)
