"""The pure parts of the sandbox: replies, token estimates, stream pieces, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptrun.server.sandbox import SandboxSettings, sandbox_reply
from promptrun.server.sandbox._reply import (
    ToolSpec,
    count_tokens,
    plan_reply,
    sample_arguments,
    split_pieces,
)


def test_reply_quotes_the_start_of_the_prompt_and_adds_hashed_words() -> None:
    reply = sandbox_reply("What   is\nthe capital of France? " + "x" * 80)

    assert reply.startswith("Sandbox reply to: What is the capital of France? xxx")
    snippet, _, words = reply.removeprefix("Sandbox reply to: ").partition(" (")
    assert len(snippet) == 60
    assert len(words.rstrip(")").split()) == 4


def test_prompts_sharing_a_beginning_still_get_different_replies() -> None:
    base = "y" * 70

    assert sandbox_reply(base + "a") != sandbox_reply(base + "b")


@given(st.text())
def test_reply_is_a_pure_function_of_the_prompt(prompt: str) -> None:
    assert sandbox_reply(prompt) == sandbox_reply(str(prompt))
    assert sandbox_reply(prompt).startswith("Sandbox reply to: ")


@given(st.text(), st.integers(min_value=1, max_value=40))
def test_pieces_join_back_to_the_text(text: str, pieces: int) -> None:
    parts = split_pieces(text, pieces)

    assert "".join(parts) == text
    assert 1 <= len(parts) <= max(1, pieces)


def test_a_reply_splits_into_exactly_the_requested_number_of_pieces() -> None:
    reply = sandbox_reply("hello")

    assert len(split_pieces(reply, 5)) == 5
    assert all(split_pieces(reply, 5))


def test_tokens_are_four_thirds_of_the_words_and_never_zero() -> None:
    assert count_tokens(3) == 4
    assert count_tokens(10) == 13
    assert count_tokens(0) == 1


def test_sample_arguments_fill_required_keys_by_type() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING"},
            "count": {"type": "integer"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "tags": {"type": ["array", "null"]},
            "note": {"type": "string"},
        },
        "required": ["name", "count", "unit", "tags", "missing"],
    }

    assert sample_arguments(schema) == {
        "name": "sample",
        "count": 1,
        "unit": "c",
        "tags": [],
        "missing": "sample",
    }
    assert sample_arguments({}) == {}


def test_tool_call_needs_an_offered_tool_the_word_tool_and_no_pending_result() -> None:
    tool = ToolSpec("lookup", {"type": "object"})

    called = plan_reply("please use the Tool", 4, tool)
    assert called.tool_name == "lookup"
    assert called.arguments_json == "{}"
    assert plan_reply("please use the tool", 4, None).tool_name is None
    assert plan_reply("toolbox talk", 2, tool).tool_name is None
    assert plan_reply("use the tool", 3, tool, answering_tool_result=True).tool_name is None


def test_usage_follows_the_word_counts() -> None:
    reply = plan_reply("hi there", 6, None)

    assert reply.input_tokens == 8
    assert reply.output_tokens == count_tokens(len(reply.text.split()))
    assert reply.total_tokens == reply.input_tokens + reply.output_tokens


@pytest.mark.parametrize(
    "kwargs",
    [{"chunks": 0}, {"latency_ms": -1.0}, {"chunk_delay_ms": -0.5}, {"chunks": 1001},
     {"latency_ms": 60_001.0}, {"latency_ms": float("nan")}, {"chunk_delay_ms": 1e9}],
)  # fmt: skip
def test_settings_refuse_impossible_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be between"):
        SandboxSettings(**kwargs)  # type: ignore[arg-type]
