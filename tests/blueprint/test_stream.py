"""Stream accumulators: chunks (dicts and SDK objects) to messages and final responses."""

from __future__ import annotations

import functools
import itertools
import json
import timeit
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptrun.blueprint import StreamAccumulator, response_message, stream_accumulator, usage_of

# -- chunk factories (dict form; `_sdk_*` turn them into provider SDK objects) ---------------


def oa_chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": choices,
        **extra,
    }


def oa_tool(
    index: int, args: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    delta: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id:
        delta["id"] = call_id
        delta["type"] = "function"
        delta["function"]["name"] = name
    return {"tool_calls": [delta]}


OPENAI_CHUNKS = [
    oa_chunk({"role": "assistant", "content": ""}),
    oa_chunk({"content": "Hel"}),
    oa_chunk({"content": "lo"}),
    oa_chunk(oa_tool(0, "", "call_1", "f")),
    oa_chunk(oa_tool(0, '{"a"')),
    oa_chunk(oa_tool(0, ": 1}")),
    oa_chunk(oa_tool(1, "{}", "call_2", "g")),
    oa_chunk({}, "tool_calls"),
    oa_chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}),
]


def legacy_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
    }


RESPONSE_DONE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1.0,
    "model": "gpt-4.1",
    "status": "completed",
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "output": [
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": '{"a": 1}',
        },
    ],
    "usage": {
        "input_tokens": 9,
        "output_tokens": 5,
        "total_tokens": 14,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}
RESPONSE_START = {**RESPONSE_DONE, "status": "in_progress", "output": [], "usage": None}


def rs_text(delta: str, seq: int = 0) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "delta": delta,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "logprobs": [],
        "sequence_number": seq,
    }


def rs_args(delta: str) -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.delta",
        "delta": delta,
        "item_id": "fc_1",
        "output_index": 1,
        "sequence_number": 0,
    }


RESPONSES_EVENTS = [
    {"type": "response.created", "response": RESPONSE_START, "sequence_number": 0},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "sequence_number": 1,
        "item": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        },
    },
    rs_text("Hel"),
    rs_text("lo"),
    {
        "type": "response.output_item.added",
        "output_index": 1,
        "sequence_number": 4,
        "item": {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": "",
        },
    },
    rs_args('{"a"'),
    rs_args(": 1}"),
    {"type": "response.completed", "response": RESPONSE_DONE, "sequence_number": 9},
]


ANTHROPIC_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 1},
        },
    },
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Hmm."},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "sig"},
    },
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": ": 1}"},
    },
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    },
    {"type": "message_stop"},
]


def g_chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finish_reason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "model_version": "gemini-2.5-flash"}
    if usage:
        out["usage_metadata"] = usage
    return out


GOOGLE_CHUNKS = [
    g_chunk([{"text": "Hmm.", "thought": True, "thought_signature": "c2ln"}]),
    g_chunk([{"text": "Hel"}], usage={"prompt_token_count": 9, "candidates_token_count": 1}),
    g_chunk([{"text": "lo"}]),
    g_chunk(
        [{"function_call": {"name": "f", "args": {"a": 1}}}],
        "STOP",
        {"prompt_token_count": 9, "candidates_token_count": 3, "thoughts_token_count": 2},
    ),
]


def _sdk_openai(chunk: dict[str, Any]) -> Any:
    from openai.types.chat import ChatCompletionChunk

    return ChatCompletionChunk.model_validate(chunk)


def _sdk_legacy(chunk: dict[str, Any]) -> Any:
    from openai.types import Completion

    # Streamed completion chunks carry finish_reason None, which the model's Literal rejects;
    # the SDK builds them without validation, and so do we.
    return Completion.construct(**chunk)


@functools.cache
def _adapter(name: str) -> pydantic.TypeAdapter[Any]:
    if name == "responses":
        from openai.types.responses import ResponseStreamEvent

        return pydantic.TypeAdapter(ResponseStreamEvent)
    from anthropic.types import RawMessageStreamEvent

    return pydantic.TypeAdapter(RawMessageStreamEvent)


def _sdk_responses(event: dict[str, Any]) -> Any:
    return _adapter("responses").validate_python(event)


def _sdk_anthropic(event: dict[str, Any]) -> Any:
    return _adapter("anthropic").validate_python(event)


def _sdk_google(chunk: dict[str, Any]) -> Any:
    from google.genai.types import GenerateContentResponse

    return GenerateContentResponse.model_validate(chunk)


def _final_sdk(provider: str, api_type: str | None, final: dict[str, Any]) -> Any:
    """The final response dict must validate as the provider's non-streaming SDK type."""
    if provider == "anthropic":
        from anthropic.types import Message

        return Message.model_validate(final)
    if provider == "google":
        from google.genai.types import GenerateContentResponse

        return GenerateContentResponse.model_validate(final)
    if api_type == "responses":
        from openai.types.responses import Response

        return Response.model_validate(final)
    from openai.types.chat import ChatCompletion

    return ChatCompletion.model_validate(final)


def _identity(chunk: dict[str, Any]) -> Any:
    return chunk


CALL_F = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
STREAMS = [
    # (provider, api_type, chunks, to_sdk, expected content, expected tool calls, usage)
    (
        "openai",
        None,
        OPENAI_CHUNKS,
        _sdk_openai,
        [{"type": "text", "text": "Hello"}],
        [
            CALL_F,
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
        ],
        (9, 5),
    ),
    (
        "openai",
        "responses",
        RESPONSES_EVENTS,
        _sdk_responses,
        [{"type": "text", "text": "Hello"}],
        [CALL_F],
        (9, 5),
    ),
    (
        "anthropic",
        None,
        ANTHROPIC_EVENTS,
        _sdk_anthropic,
        [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
            {"type": "text", "text": "Hello"},
        ],
        [CALL_F],
        (9, 5),
    ),
    (
        "google",
        None,
        GOOGLE_CHUNKS,
        _sdk_google,
        [
            {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
            {"type": "text", "text": "Hello"},
        ],
        [{"id": "call_0", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
        (9, 5),
    ),
]
STREAM_IDS = ["openai-chat", "openai-responses", "anthropic", "google"]


@pytest.mark.parametrize("as_sdk", [False, True], ids=["dict", "sdk"])
@pytest.mark.parametrize(
    ("provider", "api_type", "chunks", "to_sdk", "content", "calls", "tokens"),
    STREAMS,
    ids=STREAM_IDS,
)
def test_accumulator_collects_text_thinking_tool_calls_and_usage(
    provider: str,
    api_type: str | None,
    chunks: list[dict[str, Any]],
    to_sdk: Callable[[dict[str, Any]], Any],
    content: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    tokens: tuple[int, int],
    as_sdk: bool,
) -> None:
    acc = stream_accumulator(provider, api_type, "chat")
    assert isinstance(acc, StreamAccumulator)
    seen = []
    for chunk in chunks:
        message = acc.add(to_sdk(chunk) if as_sdk else chunk)
        seen.append(message)
    assert (
        seen[-1]
        == acc.message()
        == {
            "role": "assistant",
            "content": content,
            "tool_calls": calls,
            "input_variables": [],
            "template_format": "f-string",
        }
    )
    texts = [next((p["text"] for p in m["content"] if p["type"] == "text"), "") for m in seen]
    assert all(a == b[: len(a)] for a, b in itertools.pairwise(texts)), "text only grows"
    assert acc.text == "Hello"
    assert acc.usage == tokens


@pytest.mark.parametrize("as_sdk", [False, True], ids=["dict", "sdk"])
@pytest.mark.parametrize(
    ("provider", "api_type", "chunks", "to_sdk", "content", "calls", "tokens"),
    STREAMS,
    ids=STREAM_IDS,
)
def test_final_response_is_the_providers_non_streaming_shape(
    provider: str,
    api_type: str | None,
    chunks: list[dict[str, Any]],
    to_sdk: Callable[[dict[str, Any]], Any],
    content: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    tokens: tuple[int, int],
    as_sdk: bool,
) -> None:
    acc = stream_accumulator(provider, api_type, "chat")
    for chunk in chunks:
        acc.add(to_sdk(chunk) if as_sdk else chunk)
    final = acc.final_response()
    json.dumps(final)
    parsed = _final_sdk(provider, api_type, final)
    assert usage_of(provider, final) == tokens
    assert usage_of(provider, parsed) == tokens
    from_final = response_message(provider, api_type, final)
    assert from_final["content"] == content
    assert [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in from_final["tool_calls"]
    ] == [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


def test_openai_chat_final_response_has_finish_reason_and_usage() -> None:
    acc = stream_accumulator("openai", "chat-completions", "chat")
    for chunk in OPENAI_CHUNKS:
        acc.add(chunk)
    final = acc.final_response()
    assert final["object"] == "chat.completion"
    assert final["id"] == "chatcmpl-1"
    assert final["choices"][0]["finish_reason"] == "tool_calls"
    assert final["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}


def test_anthropic_final_response_has_stop_reason_usage_and_parsed_tool_input() -> None:
    acc = stream_accumulator("anthropic")
    for event in ANTHROPIC_EVENTS:
        acc.add(event)
    final = acc.final_response()
    assert final["stop_reason"] == "tool_use"
    assert final["usage"] == {"input_tokens": 9, "output_tokens": 5}
    assert final["content"][2] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "f",
        "input": {"a": 1},
    }


def test_google_final_response_has_finish_reason_and_last_usage() -> None:
    acc = stream_accumulator("google")
    for chunk in GOOGLE_CHUNKS:
        acc.add(_sdk_google(chunk))
    final = acc.final_response()
    assert final["candidates"][0]["finish_reason"] == "STOP"
    assert final["usage_metadata"]["candidates_token_count"] == 3
    assert final["candidates"][0]["content"]["parts"] == [
        {"text": "Hmm.", "thought": True, "thought_signature": "c2ln"},
        {"text": "Hello"},
        {"function_call": {"name": "f", "args": {"a": 1}}},
    ]


@pytest.mark.parametrize("as_sdk", [False, True], ids=["dict", "sdk"])
def test_legacy_completion_stream_accumulates_text(as_sdk: bool) -> None:
    acc = stream_accumulator("openai", None, "completion")
    for chunk in [legacy_chunk("Once"), legacy_chunk(" upon", "stop")]:
        acc.add(_sdk_legacy(chunk) if as_sdk else chunk)
    assert acc.message()["content"] == [{"type": "text", "text": "Once upon"}]
    final = acc.final_response()
    assert final["object"] == "text_completion"
    assert final["choices"][0]["text"] == "Once upon"
    assert final["choices"][0]["finish_reason"] == "stop"


def test_responses_stream_without_completion_still_builds_a_response() -> None:
    acc = stream_accumulator("openai", "responses")
    for event in RESPONSES_EVENTS[:-1]:
        acc.add(event)
    final = acc.final_response()
    assert final["status"] == "incomplete"
    message = response_message("openai", "responses", final)
    assert message["content"] == [{"type": "text", "text": "Hello"}]
    assert message["tool_calls"] == [CALL_F]


def test_unchanged_parts_of_the_message_are_shared_between_chunks() -> None:
    acc = stream_accumulator("anthropic")
    for event in ANTHROPIC_EVENTS[:8]:
        before = acc.add(event)
    after = acc.add(ANTHROPIC_EVENTS[8])
    assert after["content"][0] is before["content"][0]


def test_empty_stream_gives_an_empty_message_and_zero_usage() -> None:
    for provider in ("openai", "anthropic", "google"):
        acc = stream_accumulator(provider)
        assert acc.message()["content"] == []
        assert acc.usage == (0, 0)
        json.dumps(acc.final_response())


# -- any split of a text accumulates to that text ---------------------------------------------


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _text_chunks(provider: str, pieces: list[str]) -> list[dict[str, Any]]:
    if provider == "openai":
        return [oa_chunk({"content": p}) for p in pieces]
    if provider == "responses":
        return [rs_text(p) for p in pieces]
    if provider == "anthropic":
        start = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        deltas = [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in pieces
        ]
        return [ANTHROPIC_EVENTS[0], start, *deltas]
    return [g_chunk([{"text": p}]) for p in pieces]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["openai", "responses", "anthropic", "google"]),
    st.text(min_size=1),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_any_split_of_a_text_accumulates_to_that_text(
    provider: str, text: str, cuts: list[int]
) -> None:
    pieces = _split(text, cuts)
    assert "".join(pieces) == text
    acc = (
        stream_accumulator("openai", "responses")
        if provider == "responses"
        else stream_accumulator(provider)
    )
    for chunk in _text_chunks(provider, pieces):
        message = acc.add(chunk)
    assert message["content"] == [{"type": "text", "text": text}]
    assert acc.text == text


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet='{}":,ab 1', min_size=1), st.lists(st.integers(min_value=0), max_size=10))
def test_any_split_of_tool_arguments_concatenates_them(arguments: str, cuts: list[int]) -> None:
    pieces = _split(arguments, cuts)
    chunks = [oa_chunk(oa_tool(0, "", "call_1", "f"))] + [oa_chunk(oa_tool(0, p)) for p in pieces]
    acc = stream_accumulator("openai")
    for chunk in chunks:
        acc.add(_sdk_openai(chunk))
    assert acc.message()["tool_calls"][0]["function"]["arguments"] == arguments


# -- per-chunk cost -----------------------------------------------------------------------------

# What `add()` costs per chunk with SDK objects, measured on a long text stream. The bound is
# loose so a slow CI machine does not fail; the measured numbers are printed (pytest -s).
PER_CHUNK_BUDGET = 30e-6


@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic", "google"])
def test_add_costs_a_few_microseconds_per_sdk_chunk(provider: str) -> None:
    to_sdk = {
        "openai": _sdk_openai,
        "responses": _sdk_responses,
        "anthropic": _sdk_anthropic,
        "google": _sdk_google,
    }[provider]
    chunks = [to_sdk(c) for c in _text_chunks(provider, ["word "] * 500)]

    def run() -> None:
        acc = (
            stream_accumulator("openai", "responses")
            if provider == "responses"
            else stream_accumulator(provider)
        )
        for chunk in chunks:
            acc.add(chunk)

    run()
    per_chunk = min(timeit.repeat(run, number=5, repeat=3)) / 5 / len(chunks)
    print(f"\n{provider}: {per_chunk * 1e6:.2f} µs per chunk")
    assert per_chunk < PER_CHUNK_BUDGET
