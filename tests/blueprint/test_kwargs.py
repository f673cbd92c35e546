"""Blueprint templates to provider kwargs, model resolution, overrides and function names."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from promptrun import PromptLayerValidationError
from promptrun.blueprint import (
    DEFAULT_MODELS,
    apply_parameter_overrides,
    build_llm_kwargs,
    default_parameters,
    function_name_for,
    google_call_args,
    resolve_model,
)

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
TOOLS = [
    {"type": "function", "function": {"name": "f", "description": "adds", "parameters": SCHEMA}}
]


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def chat_template(**extra: Any) -> dict[str, Any]:
    return {
        "type": "chat",
        "messages": [
            {
                "role": "system",
                "content": [_text("Be brief.")],
                "input_variables": [],
                "template_format": "f-string",
            },
            {
                "role": "user",
                "content": [
                    _text("Look:"),
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                ],
            },
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
            {"role": "tool", "content": [_text("42")], "tool_call_id": "call_1"},
            {"role": "user", "content": [_text("Thanks")]},
        ],
        "tools": TOOLS,
        "tool_choice": "auto",
        "input_variables": [],
        **extra,
    }


COMPLETION = {"type": "completion", "content": [_text("Once upon a time")], "input_variables": []}


def model(provider: str, api_type: str | None = None, **parameters: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "name": "some-model",
        "parameters": parameters,
        "api_type": api_type,
    }


def _accepts(method: Any, kwargs: dict[str, Any]) -> None:
    """The SDK method takes every kwarg by name (an unknown one is a TypeError at call time)."""
    inspect.signature(method).bind(None, **kwargs)


# -- OpenAI ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "openai.azure"])
def test_openai_chat_kwargs_carry_messages_tools_and_parameters(provider: str) -> None:
    import openai.resources.chat

    kwargs = build_llm_kwargs(
        chat_template(), model(provider, "chat-completions", temperature=0.2, seed=None)
    )
    assert kwargs == {
        "model": "some-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "content": "42", "tool_call_id": "call_1"},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": TOOLS,
        "tool_choice": "auto",
        "temperature": 0.2,
    }
    _accepts(openai.resources.chat.Completions.create, kwargs)


def test_openai_api_type_none_means_chat_completions() -> None:
    kwargs = build_llm_kwargs(chat_template(), model("openai", None))
    assert "messages" in kwargs
    assert "input" not in kwargs


def test_openai_chat_drops_thinking_parts_and_tools_when_absent() -> None:
    template = {
        "type": "chat",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, _text("A")],
            }
        ],
        "tools": [],
        "tool_choice": None,
    }
    kwargs = build_llm_kwargs(template, model("openai"))
    assert kwargs == {"model": "some-model", "messages": [{"role": "assistant", "content": "A"}]}


def test_openai_completion_template_uses_prompt() -> None:
    import openai.resources

    kwargs = build_llm_kwargs(COMPLETION, model("openai", max_tokens=5))
    assert kwargs == {"model": "some-model", "prompt": "Once upon a time", "max_tokens": 5}
    _accepts(openai.resources.Completions.create, kwargs)


def test_openai_responses_kwargs_use_input_items_and_instructions() -> None:
    import openai.resources.responses

    kwargs = build_llm_kwargs(
        chat_template(tool_choice={"type": "function", "function": {"name": "f"}}),
        model("openai", "responses", max_tokens=100, temperature=1),
    )
    assert kwargs == {
        "model": "some-model",
        "instructions": "Be brief.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look:"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,aGVsbG8=",
                        "detail": "auto",
                    },
                ],
            },
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            {"role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
        ],
        "tools": [{"type": "function", "name": "f", "description": "adds", "parameters": SCHEMA}],
        "tool_choice": {"type": "function", "name": "f"},
        "max_output_tokens": 100,
        "temperature": 1,
    }
    _accepts(openai.resources.responses.Responses.create, kwargs)


def test_openai_responses_assistant_text_is_output_text() -> None:
    template = {"type": "chat", "messages": [{"role": "assistant", "content": [_text("hi")]}]}
    kwargs = build_llm_kwargs(template, model("openai", "responses"))
    assert kwargs["input"] == [
        {"role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
    ]


# -- Anthropic -------------------------------------------------------------------------------


def test_anthropic_kwargs_split_system_merge_roles_and_map_tools() -> None:
    import anthropic.resources

    kwargs = build_llm_kwargs(chat_template(), model("anthropic", stop_sequences=["END"]))
    assert kwargs == {
        "model": "some-model",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_1",
                        "content": [{"type": "text", "text": "42"}],
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "tools": [{"name": "f", "description": "adds", "input_schema": SCHEMA}],
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["END"],
    }
    _accepts(anthropic.resources.Messages.create, kwargs)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_anthropic_tool_choice_is_translated(choice: Any, expected: Any) -> None:
    kwargs = build_llm_kwargs(chat_template(tool_choice=choice), model("anthropic"))
    assert kwargs["tool_choice"] == expected


def test_anthropic_uses_template_max_tokens_and_keeps_thinking_blocks() -> None:
    template = {
        "type": "chat",
        "messages": [
            {"role": "user", "content": [_text("q"), _text("")]},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "t", "signature": "sig"}, _text("a")],
            },
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.test/i.png"}}
                ],
            },
        ],
    }
    kwargs = build_llm_kwargs(template, model("anthropic", max_tokens=77))
    assert kwargs["max_tokens"] == 77
    assert "system" not in kwargs
    assert kwargs["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "sig"},
                {"type": "text", "text": "a"},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.test/i.png"}}
            ],
        },
    ]


def test_anthropic_completion_template_is_one_user_message() -> None:
    kwargs = build_llm_kwargs(COMPLETION, model("anthropic"))
    assert kwargs == {
        "model": "some-model",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Once upon a time"}]}],
    }


def test_tool_call_arguments_that_are_not_json_are_a_validation_error() -> None:
    template = chat_template()
    template["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{not json"
    with pytest.raises(PromptLayerValidationError, match="call_1"):
        build_llm_kwargs(template, model("anthropic"))


# -- Google ----------------------------------------------------------------------------------


def test_google_chat_kwargs_have_history_and_generation_config() -> None:
    kwargs = build_llm_kwargs(
        chat_template(), model("google", temperature=0.3, max_tokens=64, stop=["x"])
    )
    assert kwargs == {
        "model": "some-model",
        "history": [
            {
                "role": "user",
                "parts": [
                    {"text": "Look:"},
                    {"inline_data": {"mime_type": "image/png", "data": "aGVsbG8="}},
                ],
            },
            {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"a": 1}}}]},
            {
                "role": "user",
                "parts": [
                    {"function_response": {"name": "f", "response": {"result": "42"}}},
                    {"text": "Thanks"},
                ],
            },
        ],
        "generation_config": {
            "temperature": 0.3,
            "max_output_tokens": 64,
            "stop_sequences": ["x"],
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "tools": [
                {
                    "function_declarations": [
                        {"name": "f", "description": "adds", "parameters_json_schema": SCHEMA}
                    ]
                }
            ],
            "tool_config": {"function_calling_config": {"mode": "AUTO"}},
        },
    }


def test_google_kwargs_validate_as_sdk_types_and_feed_generate_content() -> None:
    from google.genai import types

    kwargs = build_llm_kwargs(chat_template(), model("google", temperature=0.3, max_tokens=64))
    name, contents, config = google_call_args(kwargs)
    assert name == "some-model"
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    parsed = types.GenerateContentConfig.model_validate(config)
    assert parsed.max_output_tokens == 64
    assert parsed.system_instruction is not None
    for content in contents:
        types.Content.model_validate(content)
    assert types.Content.model_validate(contents[0]).parts[1].inline_data.data == b"hello"  # type: ignore[index,union-attr]


def test_google_completion_kwargs_use_contents() -> None:
    kwargs = build_llm_kwargs(COMPLETION, model("google"))
    assert kwargs == {
        "model": "some-model",
        "contents": [{"role": "user", "parts": [{"text": "Once upon a time"}]}],
        "generation_config": {},
    }
    assert google_call_args(kwargs) == ("some-model", kwargs["contents"], {})


def test_google_call_args_fold_top_level_settings_into_config() -> None:
    kwargs = {
        "model": "g",
        "contents": "hello",
        "system_instruction": "sys",
        "config": {"temperature": 1},
    }
    assert google_call_args(kwargs) == (
        "g",
        ["hello"],
        {"temperature": 1, "system_instruction": "sys"},
    )


def test_google_required_tool_choice_names_the_function() -> None:
    kwargs = build_llm_kwargs(
        chat_template(tool_choice={"type": "function", "function": {"name": "f"}}), model("google")
    )
    assert kwargs["generation_config"]["tool_config"] == {
        "function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}
    }


def test_google_kwargs_feed_the_peer_sdk_chat_path_shape() -> None:
    """The PromptLayer SDK builds ``Content(**item)`` from each history item and passes
    ``generation_config`` as the chat config; both must validate."""
    from google.genai import types

    kwargs = build_llm_kwargs(chat_template(), model("google", temperature=0))
    history = [types.Content(**item) for item in kwargs["history"]]
    assert history[-1].parts[-1].text == "Thanks"  # type: ignore[index]
    types.GenerateContentConfig.model_validate(kwargs["generation_config"])


# -- dispatch, models, overrides, names --------------------------------------------------------


def test_unsupported_provider_is_a_validation_error_listing_supported_ones() -> None:
    with pytest.raises(PromptLayerValidationError, match="anthropic"):
        build_llm_kwargs(chat_template(), model("cohere"))


@pytest.mark.parametrize(
    ("provider", "expected"),
    [("openai", {}), ("openai.azure", {}), ("anthropic", {"max_tokens": 1024}), ("google", {})],
)
def test_default_parameters_per_provider(provider: str, expected: dict[str, Any]) -> None:
    assert default_parameters(provider, "x") == expected


TEMPLATE_MODEL = {
    "provider": "openai",
    "name": "gpt-4o",
    "parameters": {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 300,
        "frequency_penalty": 1,
        "seed": 3,
    },
    "api_type": "chat-completions",
}


@pytest.mark.parametrize(
    ("provider", "model_name", "expected"),
    [
        (
            "anthropic",
            None,
            {
                "provider": "anthropic",
                "name": "claude-sonnet-4-6",
                "api_type": None,
                "parameters": {"max_tokens": 300},
            },
        ),
        (
            "google",
            "gemini-2.0-pro",
            {
                "provider": "google",
                "name": "gemini-2.0-pro",
                "api_type": None,
                "parameters": {"max_output_tokens": 300},
            },
        ),
        (
            "openai",
            "gpt-4.1",
            {**TEMPLATE_MODEL, "name": "gpt-4.1"},
        ),
        (None, "gpt-4.1", {**TEMPLATE_MODEL, "name": "gpt-4.1"}),
        (None, None, TEMPLATE_MODEL),
    ],
)
def test_resolve_model_applies_provider_and_model_overrides(
    provider: str | None, model_name: str | None, expected: dict[str, Any]
) -> None:
    assert resolve_model(TEMPLATE_MODEL, provider, model_name) == expected


def test_switching_to_openai_names_its_default_model_and_max_tokens_field() -> None:
    anthropic_model = {
        "provider": "anthropic",
        "name": "claude",
        "parameters": {"max_tokens": 9, "top_k": 5},
    }
    resolved = resolve_model(anthropic_model, "openai", None)
    assert resolved == {
        "provider": "openai",
        "name": DEFAULT_MODELS["openai"],
        "parameters": {"max_completion_tokens": 9},
        "api_type": "chat-completions",
    }


def test_switching_to_anthropic_without_a_limit_gets_the_default_max_tokens() -> None:
    resolved = resolve_model(
        {"provider": "google", "name": "g", "parameters": {}}, "anthropic", "claude-x"
    )
    assert resolved["parameters"] == {"max_tokens": 1024}
    assert resolved["name"] == "claude-x"


def test_resolve_model_never_mutates_the_template_model() -> None:
    template_model = {"provider": "openai", "name": "a", "parameters": {"temperature": 1}}
    resolve_model(template_model, "anthropic", None)
    resolve_model(template_model, None, "b")
    assert template_model == {"provider": "openai", "name": "a", "parameters": {"temperature": 1}}


def test_switching_to_an_unknown_provider_is_a_validation_error() -> None:
    with pytest.raises(PromptLayerValidationError):
        resolve_model(TEMPLATE_MODEL, "acme", None)


def test_parameter_overrides_go_top_level_for_openai_and_anthropic() -> None:
    kwargs = {"model": "m", "messages": [], "temperature": 1}
    out = apply_parameter_overrides("anthropic", kwargs, {"temperature": 0, "top_k": 3})
    assert out == {"model": "m", "messages": [], "temperature": 0, "top_k": 3}
    assert kwargs["temperature"] == 1
    assert apply_parameter_overrides("openai", kwargs, None) is kwargs


def test_parameter_overrides_go_into_the_google_generation_config() -> None:
    kwargs = {"model": "g", "history": [], "generation_config": {"temperature": 1, "top_k": 2}}
    out = apply_parameter_overrides("google", kwargs, {"temperature": 0, "max_tokens": 10})
    assert out["generation_config"] == {"temperature": 0, "top_k": 2, "max_output_tokens": 10}
    assert kwargs["generation_config"] == {"temperature": 1, "top_k": 2}


@pytest.mark.parametrize(
    ("provider", "api_type", "template_type", "peer_key"),
    [
        ("openai", "chat-completions", "chat", "openai:chat-completions"),
        ("openai", None, "completion", "openai:chat-completions"),
        ("openai", "responses", "chat", "openai:responses"),
        ("openai", "responses", "completion", "openai:responses"),
        ("openai.azure", "chat-completions", "chat", "openai.azure:chat-completions"),
        ("openai.azure", None, "completion", "openai.azure:chat-completions"),
        ("openai.azure", "responses", "chat", "openai.azure:responses"),
        ("anthropic", None, "chat", "anthropic"),
        ("anthropic", None, "completion", "anthropic"),
        ("google", None, "chat", "google"),
        ("google", None, "completion", "google"),
    ],
)
def test_function_names_match_what_the_peer_sdk_sends(
    provider: str, api_type: str | None, template_type: str, peer_key: str
) -> None:
    from promptlayer.promptlayer_mixins import MAP_PROVIDER_TO_FUNCTION_NAME

    peer = MAP_PROVIDER_TO_FUNCTION_NAME[peer_key][template_type]["function_name"]
    assert function_name_for(provider, api_type, template_type) == peer
