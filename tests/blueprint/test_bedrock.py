"""Bedrock Converse <-> blueprint, ConverseStream events -> blueprint, and the provider table's
kwargs shapes for the providers added beside openai, anthropic and google."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from promptrun import blueprint as bp
from promptrun.blueprint import _bedrock

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="{}"),
    min_size=1,
    max_size=40,
)


def part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    """Chat templates: a system text, then alternating user and assistant turns (an assistant
    turn may call a tool, answered by a tool message)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": [part(draw(TEXT))]}]
    for i in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": [part(draw(TEXT))]})
        if draw(st.booleans()):
            call_id = f"tooluse_{i}"
            arguments = draw(st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2))
            messages.append(
                {
                    "role": "assistant",
                    "content": [],
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "lookup", "arguments": arguments},
                        }
                    ],
                }
            )
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": [part(draw(TEXT))]}
            )
        messages.append({"role": "assistant", "content": [part(draw(TEXT))]})
    return {"type": "chat", "messages": messages}


def shape(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must survive a round trip: roles, texts, tool calls and results."""
    out = []
    for m in messages:
        calls = tuple(
            (
                c["id"],
                c["function"]["name"],
                bp._util.load_arguments(c["function"]["arguments"], ""),
            )
            for c in m.get("tool_calls") or ()
        )
        texts = tuple(p["text"] for p in m["content"] if p.get("type") == "text")
        out.append((m["role"], texts, calls, m.get("tool_call_id")))
    return out


@given(conversations())
def test_a_chat_template_survives_converse_kwargs_and_back(template: dict[str, Any]) -> None:
    model = {"provider": "amazon.bedrock", "name": "m", "parameters": {"max_tokens": 9}}
    kwargs = bp.build_llm_kwargs(template, model)
    assert kwargs["modelId"] == "m" and kwargs["inferenceConfig"] == {"maxTokens": 9}
    # Converse alternates roles: no two consecutive messages share one.
    roles = [m["role"] for m in kwargs["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    back = bp.kwargs_messages("amazon.bedrock", kwargs)
    assert shape(back) == shape(template["messages"])


def test_converse_kwargs_carry_tools_choice_images_and_model_fields() -> None:
    template = {
        "type": "chat",
        "messages": [
            {
                "role": "user",
                "content": [
                    part("look"),
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
                ],
            }
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": "required",
    }
    model = {"provider": "amazon.bedrock", "name": "m", "parameters": {"top_k": 5, "stop": "x"}}
    kwargs = bp.build_llm_kwargs(template, model)
    assert kwargs["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": "aGk="}}
    }
    assert kwargs["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "description": "d",
                    "inputSchema": {"json": {"type": "object"}},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    assert kwargs["inferenceConfig"] == {"stopSequences": ["x"]}
    assert kwargs["additionalModelRequestFields"] == {"top_k": 5}
    assert (
        bp.logged_blueprint("amazon.bedrock", "m", {}, kwargs, None)["prompt_template"]["tools"]
        == template["tools"]
    )
    image = bp.kwargs_messages("amazon.bedrock", kwargs)[0]["content"][1]
    assert image == {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}


def test_parameter_overrides_land_in_inference_config_or_model_fields() -> None:
    kwargs = {"modelId": "m", "messages": [], "inferenceConfig": {"maxTokens": 5}}
    out = bp.apply_parameter_overrides(
        "amazon.bedrock", kwargs, {"temperature": 0.5, "max_tokens": 7, "top_k": 3}
    )
    assert out["inferenceConfig"] == {"maxTokens": 7, "temperature": 0.5}
    assert out["additionalModelRequestFields"] == {"top_k": 3}
    assert kwargs["inferenceConfig"] == {"maxTokens": 5}  # the input is not changed


def test_a_converse_response_becomes_an_assistant_message_with_usage() -> None:
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                    {"text": "Hi"},
                    {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 3, "outputTokens": 4, "cacheReadInputTokens": 2},
    }
    message = bp.response_message("amazon.bedrock", None, response)
    assert message["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        part("Hi"),
    ]
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert bp.usage_of("amazon.bedrock", response) == (5, 4)
    # A server reading a record logged under another name still recognises the shape.
    assert bp.usage_of("bedrock-proxy", response) == (5, 4)


@given(st.lists(TEXT, min_size=1, max_size=6), st.booleans())
def test_converse_stream_events_accumulate_to_the_response_converse_would_give(
    pieces: list[str], with_tool: bool
) -> None:
    events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
    events += [
        {"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in pieces
    ]
    events.append({"contentBlockStop": {"contentBlockIndex": 0}})
    if with_tool:
        start = {"toolUse": {"toolUseId": "t", "name": "f"}}
        events.append({"contentBlockStart": {"start": start, "contentBlockIndex": 1}})
        for fragment in ('{"a"', ": 1}"):
            delta = {"toolUse": {"input": fragment}}
            events.append({"contentBlockDelta": {"delta": delta, "contentBlockIndex": 1}})
    events.append({"messageStop": {"stopReason": "tool_use" if with_tool else "end_turn"}})
    events.append({"metadata": {"usage": {"inputTokens": 2, "outputTokens": 3}}})
    acc = bp.stream_accumulator("amazon.bedrock")
    for event in events:
        message = acc.add(event)
    final = acc.final_response()
    assert final["output"]["message"]["content"][0] == {"text": "".join(pieces)}
    rebuilt = bp.response_message("amazon.bedrock", None, final)
    assert message["content"] == rebuilt["content"]
    streamed_calls = [json.loads(c["function"]["arguments"]) for c in message.get("tool_calls", [])]
    assert streamed_calls == [
        json.loads(c["function"]["arguments"]) for c in rebuilt.get("tool_calls", [])
    ]
    assert acc.usage == (2, 3) == bp.usage_of("amazon.bedrock", final)
    if with_tool:
        assert final["output"]["message"]["content"][1]["toolUse"]["input"] == {"a": 1}


def test_vertexai_builds_google_kwargs_for_gemini_and_anthropic_kwargs_for_claude() -> None:
    template = {"type": "chat", "messages": [{"role": "user", "content": [part("hi")]}]}
    gemini = bp.build_llm_kwargs(template, {"provider": "vertexai", "name": "gemini-2.5-flash"})
    claude = bp.build_llm_kwargs(template, {"provider": "vertexai", "name": "claude-sonnet-4-5"})
    assert "history" in gemini
    assert claude["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert claude["max_tokens"] == 1024
    assert bp.function_name_for("vertexai", None, "chat", "claude-x") == "anthropic.messages.create"
    assert bp.function_name_for("vertexai", None, "chat", "gemini-x") == "google.convo.send_message"
    assert bp.function_name_for("amazon.bedrock", None, "chat") == "boto3.bedrock-runtime.converse"


def test_mistral_stream_events_unwrap_to_chat_chunks_with_object_arguments() -> None:
    acc = bp.stream_accumulator("mistral")
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "content": "",
                    "tool_calls": [
                        {"id": "c", "index": 0, "function": {"name": "f", "arguments": {"a": 1}}}
                    ],
                },
            }
        ]
    }
    message = acc.add({"event": "message", "data": chunk})
    assert message["tool_calls"][0]["function"]["arguments"] == '{"a":1}'


def test_a_model_switch_to_bedrock_renames_the_token_limit() -> None:
    model = bp.resolve_model(
        {"provider": "openai", "name": "gpt-4o", "parameters": {"max_completion_tokens": 5}},
        "amazon.bedrock",
        None,
    )
    assert model["parameters"] == {"maxTokens": 5}
    assert model["name"] == bp.DEFAULT_MODELS["amazon.bedrock"]
    assert _bedrock.split_parameters({"maxTokens": 5, "x": None}) == ({"maxTokens": 5}, {})
