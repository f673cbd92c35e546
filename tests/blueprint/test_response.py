"""Provider responses and kwargs back to blueprint messages; usage; logged-request blueprints."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from promptrun.blueprint import (
    build_llm_kwargs,
    kwargs_messages,
    logged_blueprint,
    response_message,
    usage_of,
)

from .test_kwargs import COMPLETION, SCHEMA, chat_template, model


def _sdk(kind: str, data: dict[str, Any]) -> Any:
    """The provider SDK object for a response dict."""
    if kind == "chat":
        from openai.types.chat import ChatCompletion

        return ChatCompletion.model_validate(data)
    if kind == "completion":
        from openai.types import Completion

        return Completion.model_validate(data)
    if kind == "responses":
        from openai.types.responses import Response

        return Response.model_validate(data)
    if kind == "anthropic":
        from anthropic.types import Message

        return Message.model_validate(data)
    from google.genai.types import GenerateContentResponse

    return GenerateContentResponse.model_validate(data)


CHAT: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me add.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":2}'},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
}
LEGACY: dict[str, Any] = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [{"index": 0, "text": " there was", "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
}
RESPONSES: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1.0,
    "model": "gpt-4.1",
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Thinking."}],
        },
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Let me add.", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_9",
            "name": "f",
            "arguments": '{"a":2}',
        },
    ],
    "usage": {
        "input_tokens": 11,
        "output_tokens": 7,
        "total_tokens": 18,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}
ANTHROPIC: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [
        {"type": "thinking", "thinking": "Thinking.", "signature": "sig"},
        {"type": "text", "text": "Let me add."},
        {"type": "tool_use", "id": "call_9", "name": "f", "input": {"a": 2}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 6},
}
GOOGLE: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Thinking.", "thought": True, "thought_signature": "c2ln"},
                    {"text": "Let me add."},
                    {"function_call": {"name": "f", "args": {"a": 2}}},
                ],
            },
            "finish_reason": "STOP",
        }
    ],
    "usage_metadata": {
        "prompt_token_count": 11,
        "candidates_token_count": 4,
        "thoughts_token_count": 3,
    },
    "model_version": "gemini-2.5-flash",
}
GOOGLE_CAMEL: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Thinking.", "thought": True, "thoughtSignature": "c2ln"},
                    {"text": "Let me add."},
                    {"functionCall": {"name": "f", "args": {"a": 2}}},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 4, "thoughtsTokenCount": 3},
}

THINKING = {"type": "thinking", "thinking": "Thinking.", "signature": "sig"}
TEXT = {"type": "text", "text": "Let me add."}
CALL = {"type": "function", "function": {"name": "f", "arguments": '{"a":2}'}}

CASES = [
    # (provider, api_type, sdk kind, response, content, tool call id, usage)
    ("openai", None, "chat", CHAT, [TEXT], "call_9", (11, 7)),
    ("openai.azure", "chat-completions", "chat", CHAT, [TEXT], "call_9", (11, 7)),
    (
        "openai",
        "responses",
        "responses",
        RESPONSES,
        [{**THINKING, "signature": None}, TEXT],
        "call_9",
        (11, 7),
    ),
    ("anthropic", None, "anthropic", ANTHROPIC, [THINKING, TEXT], "call_9", (11, 7)),
    (
        "google",
        None,
        "google",
        GOOGLE,
        [{**THINKING, "signature": "c2ln"}, TEXT],
        "call_0",
        (11, 7),
    ),
]


@pytest.mark.parametrize("as_sdk", [False, True], ids=["dict", "sdk"])
@pytest.mark.parametrize(
    ("provider", "api_type", "kind", "data", "content", "call_id", "tokens"), CASES
)
def test_response_message_reads_text_thinking_and_tool_calls(
    provider: str,
    api_type: str | None,
    kind: str,
    data: dict[str, Any],
    content: list[dict[str, Any]],
    call_id: str,
    tokens: tuple[int, int],
    as_sdk: bool,
) -> None:
    response = _sdk(kind, data) if as_sdk else data
    message = response_message(provider, api_type, response)
    assert message == {
        "role": "assistant",
        "content": content,
        "tool_calls": [{"id": call_id, **CALL}],
        "input_variables": [],
        "template_format": "f-string",
    }
    assert usage_of(provider, response) == tokens


def test_google_camel_case_json_reads_like_snake_case() -> None:
    assert response_message("google", None, GOOGLE_CAMEL) == response_message(
        "google", None, GOOGLE
    )
    assert usage_of("google", GOOGLE_CAMEL) == (11, 7)


@pytest.mark.parametrize("as_sdk", [False, True], ids=["dict", "sdk"])
def test_legacy_completion_text_becomes_one_text_part(as_sdk: bool) -> None:
    response = _sdk("completion", LEGACY) if as_sdk else LEGACY
    message = response_message("openai", None, response)
    assert message["content"] == [{"type": "text", "text": " there was"}]
    assert "tool_calls" not in message
    assert usage_of("openai", response) == (4, 2)


def test_responses_without_an_object_field_are_recognised_by_shape() -> None:
    data = {k: v for k, v in RESPONSES.items() if k != "object"}
    assert response_message("openai", None, data)["tool_calls"][0]["id"] == "call_9"


def test_missing_usage_counts_as_zero() -> None:
    assert usage_of("openai", {"choices": []}) == (0, 0)
    assert usage_of("anthropic", {"content": []}) == (0, 0)
    assert usage_of("google", {"candidates": []}) == (0, 0)
    assert usage_of("openai", None) == (0, 0)


def test_empty_choices_give_an_empty_assistant_message() -> None:
    assert response_message("openai", None, {"choices": []})["content"] == []


def test_openai_refusal_is_kept_as_text() -> None:
    data = copy.deepcopy(CHAT)
    data["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "No."}
    assert response_message("openai", None, data)["content"] == [{"type": "text", "text": "No."}]


# -- kwargs back to blueprint -----------------------------------------------------------------


def _essence(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What every provider must keep of a conversation: roles, text, images, calls, results."""
    out = []
    for m in messages:
        parts = []
        for p in m.get("content") or []:
            if p["type"] == "text":
                parts.append(("text", p["text"]))
            elif p["type"] == "image_url":
                parts.append(("image", p["image_url"]["url"]))
        calls = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in m.get("tool_calls") or []
        ]
        out.append((m["role"], tuple(parts), tuple(calls)))
    return out


@pytest.mark.parametrize(
    ("provider", "api_type"),
    [
        ("openai", None),
        ("openai.azure", None),
        ("openai", "responses"),
        ("anthropic", None),
        ("google", None),
    ],
)
def test_kwargs_messages_inverts_building(provider: str, api_type: str | None) -> None:
    template = chat_template()
    kwargs = build_llm_kwargs(template, model(provider, api_type))
    messages = kwargs_messages(provider, kwargs)
    assert _essence(messages) == _essence(template["messages"])
    assert all(m["input_variables"] == [] and m["template_format"] == "f-string" for m in messages)
    tool = next(m for m in messages if m["role"] == "tool")
    call = next(m for m in messages if m.get("tool_calls"))
    assert tool["tool_call_id"] == call["tool_calls"][0]["id"]


def test_openai_chat_kwargs_messages_are_exact() -> None:
    template = chat_template()
    messages = kwargs_messages("openai", build_llm_kwargs(template, model("openai")))
    for got, original in zip(messages, template["messages"], strict=True):
        assert got["role"] == original["role"]
        assert got["content"] == original["content"]
        assert got.get("tool_calls") == original.get("tool_calls")
        assert got.get("tool_call_id") == original.get("tool_call_id")


@pytest.mark.parametrize(
    ("provider", "api_type"),
    [("openai", None), ("openai", "responses"), ("anthropic", None), ("google", None)],
)
def test_completion_kwargs_become_one_user_message(provider: str, api_type: str | None) -> None:
    kwargs = build_llm_kwargs(COMPLETION, model(provider, api_type))
    assert _essence(kwargs_messages(provider, kwargs)) == [
        ("user", (("text", "Once upon a time"),), ())
    ]


def test_kwargs_messages_read_plain_openai_shapes_written_by_hand() -> None:
    kwargs = {
        "model": "m",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
    }
    messages = kwargs_messages("openai", kwargs)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["content"] == []
    assert messages[1]["tool_calls"][0]["id"] == "c1"
    assert messages[2]["tool_call_id"] == "c1"


def test_kwargs_messages_read_google_camel_case_and_string_contents() -> None:
    kwargs = {
        "model": "g",
        "contents": [
            "plain",
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "aGk="}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"x": 1}}}]},
        ],
        "config": {"systemInstruction": "sys"},
    }
    messages = kwargs_messages("google", kwargs)
    assert _essence(messages) == [
        ("system", (("text", "sys"),), ()),
        ("user", (("text", "plain"),), ()),
        ("user", (("image", "data:image/png;base64,aGk="),), ()),
        ("assistant", (), (("f", {}),)),
        ("tool", (("text", '{"x":1}'),), ()),
    ]


def test_anthropic_string_system_and_content_are_read() -> None:
    kwargs = {
        "model": "c",
        "max_tokens": 5,
        "system": "sys",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert _essence(kwargs_messages("anthropic", kwargs)) == [
        ("system", (("text", "sys"),), ()),
        ("user", (("text", "hi"),), ()),
    ]


# -- logged-request blueprint ------------------------------------------------------------------


@pytest.mark.parametrize("as_sdk", [False, True], ids=["dict", "sdk"])
@pytest.mark.parametrize(
    ("provider", "api_type", "kind", "data"),
    [(c[0], c[1], c[2], c[3]) for c in CASES],
)
def test_logged_blueprint_is_input_messages_plus_output(
    provider: str, api_type: str | None, kind: str, data: dict[str, Any], as_sdk: bool
) -> None:
    kwargs = build_llm_kwargs(chat_template(), model(provider, api_type))
    response = _sdk(kind, data) if as_sdk else data
    blueprint = logged_blueprint(
        provider, "some-model", {"temperature": 0}, kwargs, response, api_type
    )
    template = blueprint["prompt_template"]
    assert template["type"] == "chat"
    assert template["input_variables"] == []
    assert template["messages"][:-1] == kwargs_messages(provider, kwargs)
    assert template["messages"][-1] == response_message(provider, api_type, response)
    assert template["tools"][0]["function"]["name"] == "f"
    assert template["tools"][0]["function"]["parameters"] == SCHEMA
    expected_model: dict[str, Any] = {
        "provider": provider,
        "name": "some-model",
        "parameters": {"temperature": 0},
    }
    if api_type is not None:
        expected_model["api_type"] = api_type
    assert blueprint["metadata"] == {"model": expected_model}
    json.dumps(blueprint)


def test_logged_blueprint_of_a_failed_call_has_no_output_message() -> None:
    kwargs = build_llm_kwargs(COMPLETION, model("openai"))
    blueprint = logged_blueprint("openai", "m", None, kwargs, {})
    assert [m["role"] for m in blueprint["prompt_template"]["messages"]] == ["user"]
    assert "tools" not in blueprint["prompt_template"]
    assert blueprint["metadata"]["model"]["parameters"] == {}


# -- providers we do not build for are still read, by shape -------------------------------------


def test_unknown_openai_shaped_provider_is_read_as_openai() -> None:
    kwargs = {"model": "mistral-small", "messages": [{"role": "user", "content": "hi"}]}
    blueprint = logged_blueprint("mistral", "mistral-small", {}, kwargs, CHAT)
    messages = blueprint["prompt_template"]["messages"]
    assert _essence(messages) == [
        ("user", (("text", "hi"),), ()),
        ("assistant", (("text", "Let me add."),), (("f", {"a": 2}),)),
    ]
    assert usage_of("mistral", CHAT) == (11, 7)


def test_unknown_google_or_anthropic_shaped_providers_are_read_by_shape() -> None:
    google_kwargs = {"model": "gemini", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert _essence(kwargs_messages("vertexai", google_kwargs)) == [("user", (("text", "hi"),), ())]
    assert usage_of("vertexai", GOOGLE) == (11, 7)
    anthropic_kwargs = {
        "model": "c",
        "system": "s",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert [m["role"] for m in kwargs_messages("anthropic.vertex", anthropic_kwargs)] == [
        "system",
        "user",
    ]
    assert response_message("amazon.bedrock.claude", None, ANTHROPIC)["content"][1] == TEXT
