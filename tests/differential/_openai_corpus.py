"""The OpenAI templates of the differential suite: Chat Completions and the Responses API."""

from __future__ import annotations

import copy
from typing import Any

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
TOOLS = [
    {"type": "function", "function": {"name": "f", "description": "adds", "parameters": SCHEMA}}
]


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def version(messages: list[dict[str, Any]], parameters: dict[str, Any], **extra: Any) -> Any:
    return {
        "prompt_template": {
            "type": "chat",
            "input_variables": ["q"],
            "messages": messages,
            **extra,
        },
        "metadata": {
            "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": parameters}
        },
    }


SYSTEM = {"role": "system", "content": [text("Be brief.")]}
ASK = {"role": "user", "content": [text("Answer: {q}")]}
CORPUS: dict[str, Any] = {
    "greet": None,  # the example template, as published by `promptrun serve --examples`
    "system_and_parameters": version(
        [SYSTEM, ASK],
        {
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 64,
            "seed": 7,
            "stop": ["\n\n"],
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "response_format": {"type": "json_object"},
        },
    ),
    "tools": version(
        [
            SYSTEM,
            ASK,
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "content": [text("42")], "tool_call_id": "call_1"},
        ],
        {"temperature": 0},
        tools=TOOLS,
        tool_choice="auto",
    ),
    "image": version(
        [
            {
                "role": "user",
                "content": [
                    text("What is this? {q}"),
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                ],
            }
        ],
        {},
    ),
}


USE_TOOL = {"role": "user", "content": [text("Use the tool for: {q}")]}


def on_responses(chat_version: Any) -> Any:
    """The same template, sent to the Responses API."""
    out = copy.deepcopy(chat_version)
    out["metadata"]["model"]["api_type"] = "responses"
    return out


RESPONSES: dict[str, Any] = {
    "greet": on_responses(version([ASK], {})),
    "system_and_parameters": on_responses(
        version(
            [SYSTEM, ASK],
            {
                "temperature": 0.2,
                "top_p": 0.9,
                "max_tokens": 64,  # sent as max_output_tokens
                "store": False,
                "truncation": "auto",
                "user": "ada",
                "metadata": {"team": "tea"},
                "text": {"format": {"type": "json_object"}},
            },
        )
    ),
    "tool_history": on_responses(CORPUS["tools"]),
    # The sandbox calls the offered tool when the last user text names one.
    "tool_call": on_responses(version([SYSTEM, USE_TOOL], {}, tools=TOOLS, tool_choice="required")),
    "image": on_responses(CORPUS["image"]),
    "completion": on_responses(
        {
            "prompt_template": {
                "type": "completion",
                "input_variables": ["q"],
                "content": [text("Complete: {q}")],
            },
            "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
        }
    ),
}


#: Each API's corpus; every one has a "greet" for the failure cases.
CORPORA = {"chat": CORPUS, "responses": RESPONSES}
