"""What a logged request sent and got back, as plain text: the request list's preview columns
and the export's input and output."""

from __future__ import annotations

from typing import Any

from promptrun.server.dashboard._messages import Message, conversation_of

__all__ = ["PREVIEW", "input_output", "preview"]

PREVIEW = 120  # characters in a list cell


def _text(messages: list[Message], *, roles: bool) -> str:
    lines = []
    for message in messages:
        text = " ".join(part.text for part in message.parts if part.kind == "text")
        calls = ", ".join(call.name for call in message.tool_calls)
        if calls:
            text = f"{text} [tool call: {calls}]".strip()
        if text:
            lines.append(f"{message.role}: {text}" if roles else text)
    return "\n".join(lines)


def _conversation(item: dict[str, Any]) -> Any:
    # From the stored blueprint alone (a summary has no body): for both kinds of request it
    # holds what was sent and, last, the assistant's answer when there was one.
    blueprint = item.get("prompt_blueprint")
    return conversation_of(
        {"kind": "track", "prompt_blueprint": blueprint, "body": {"request_response": True}}
    )


def input_output(item: dict[str, Any], *, roles: bool = True) -> tuple[str, str]:
    """The text sent (every message, each after its role) and the text received."""
    conversation = _conversation(item)
    return _text(conversation.sent, roles=roles), _text(conversation.received, roles=roles)


def preview(item: dict[str, Any]) -> tuple[str, str]:
    """A line of the last message sent and of the answer, each at most PREVIEW characters."""
    conversation = _conversation(item)
    sent = _text(conversation.sent[-1:], roles=False)
    received = _text(conversation.received, roles=False)
    return _clip(sent), _clip(received)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"
