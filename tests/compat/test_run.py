"""The peer's sync ``run()`` through the sandbox, for each provider, and what the server stored."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from promptlayer import PromptLayer, PromptLayerNotFoundError

from promptrun.testing import RunningServer

from ._peer import GREETING, MODELS, OPENAI_MODEL, StoredLog, assistant_text, chat, publish

PROVIDERS = list(MODELS)

FUNCTION_NAMES = {
    "openai": "openai.chat.completions.create",
    "anthropic": "anthropic.messages.create",
    "google": "google.convo.send_message",
}


def response_text(provider: str, raw: Any) -> str:
    """The reply text of a provider SDK's response object."""
    if provider == "openai":
        return str(raw.choices[0].message.content)
    if provider == "anthropic":
        return "".join(block.text for block in raw.content if block.type == "text")
    return str(raw.text)


def delta_text(item: dict[str, Any]) -> str:
    """The text of one streamed item's per-chunk blueprint (the peer's delta message)."""
    messages = item["prompt_blueprint"]["prompt_template"]["messages"]
    return "".join(
        part.get("text", "") for m in messages for part in m.get("content") or () if part
    )


def check_stored(
    record: dict[str, Any], provider: str, *, request_id: int, stream: bool = False
) -> None:
    """The server's record of a peer run of the ``provider`` template."""
    assert record["id"] == request_id
    assert record["kind"] == "track"
    assert record["status"] == "SUCCESS"
    assert record["provider"] == provider
    assert record["model"] == MODELS[provider]["name"]
    assert record["input_tokens"] > 0
    assert record["output_tokens"] > 0
    assert record["prompt_version"] == 1
    assert record["input_variables"] == GREETING
    assert record["body"]["kwargs"].get("stream", False) is stream
    assert assistant_text(record)
    model = record["prompt_blueprint"]["metadata"]["model"]
    assert (model["provider"], model["name"]) == (provider, MODELS[provider]["name"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_run_calls_the_provider_and_the_server_stores_the_request_under_the_returned_id(
    pl: PromptLayer, stored: StoredLog, provider: str
) -> None:
    template = pl.templates.get(provider)
    result = pl.run(provider, input_variables=GREETING)
    request_id = result["request_id"]
    assert isinstance(request_id, int)
    text = response_text(provider, result["raw_response"])
    assert text
    blueprint_messages = result["prompt_blueprint"]["prompt_template"]["messages"]
    assert blueprint_messages[-1]["role"] == "assistant"
    record = stored.request(request_id)
    check_stored(record, provider, request_id=request_id)
    assert record["prompt_id"] == template["id"]
    assert record["function_name"] == FUNCTION_NAMES[provider]
    assert assistant_text(record) == text
    assert "Hello Ada, about tea" in str(record["body"]["kwargs"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_streamed_run_yields_deltas_then_a_last_item_with_the_stored_request_id(
    pl: PromptLayer, stored: StoredLog, provider: str
) -> None:
    seen = [
        (item["request_id"], delta_text(item), item["raw_response"])
        for item in pl.run(provider, input_variables=GREETING, stream=True)
    ]
    assert len(seen) >= 3
    *chunks, (request_id, _, _) = seen
    assert all(rid is None for rid, _, _ in chunks)
    assert isinstance(request_id, int)
    record = stored.request(request_id)
    check_stored(record, provider, request_id=request_id, stream=True)
    assert "".join(text for _, text, _ in chunks) == assistant_text(record)


def test_run_with_a_release_label_and_version_uses_that_version(
    pl: PromptLayer, stored: StoredLog
) -> None:
    by_label = pl.run("openai", prompt_release_label="prod", input_variables=GREETING)
    by_version = pl.run("openai", prompt_version=1, input_variables=GREETING)
    for result in (by_label, by_version):
        assert stored.request(result["request_id"])["prompt_version"] == 1


def test_run_records_tags_metadata_and_group(pl: PromptLayer, stored: StoredLog) -> None:
    group_id = pl.group.create()
    assert isinstance(group_id, int)
    result = pl.run(
        "anthropic",
        input_variables=GREETING,
        tags=["peer", "compat"],
        metadata={"user": "u1", "session": "s9"},
        group_id=group_id,
    )
    request_id = result["request_id"]
    record = stored.request(request_id)
    assert record["tags"] == ["peer", "compat"]
    assert record["metadata"] == {"user": "u1", "session": "s9"}
    assert record["group_id"] == group_id
    # ...and the track calls a user makes afterwards land on that run's record.
    assert pl.track.score(request_id, 75)
    assert pl.track.metadata(request_id, {"feedback": "good"})
    assert pl.track.prompt(request_id, "anthropic", {"name": "Ada"}, label="prod")
    assert pl.track.group(request_id, other := pl.group.create())
    record = stored.request(request_id)
    assert record["scores"] == {"default": 75}
    assert record["metadata"] == {"user": "u1", "session": "s9", "feedback": "good"}
    assert record["groups"] == sorted({group_id, other})


def test_run_with_a_provider_override_calls_the_other_provider(
    pl: PromptLayer, stored: StoredLog
) -> None:
    publish(pl, "plain", model={"provider": "openai", "name": OPENAI_MODEL, "parameters": {}})
    result = pl.run("plain", input_variables=GREETING, provider="anthropic")
    assert result["raw_response"].type == "message"
    record = stored.request(result["request_id"])
    assert record["provider"] == "anthropic"
    assert record["model"].startswith("claude-")
    assert record["body"]["kwargs"]["max_tokens"] > 0


def test_switching_a_template_with_a_temperature_to_anthropic_gives_kwargs_its_sdk_accepts(
    pl: PromptLayer,
) -> None:
    result = pl.run("openai", input_variables=GREETING, provider="anthropic")
    assert result["raw_response"].type == "message"


def test_run_with_model_parameter_overrides_sends_them_to_the_provider(
    pl: PromptLayer, stored: StoredLog
) -> None:
    result = pl.run(
        "openai", input_variables=GREETING, model_parameter_overrides={"temperature": 0.1}
    )
    assert stored.request(result["request_id"])["body"]["kwargs"]["temperature"] == 0.1


def test_run_of_a_missing_template_raises_not_found(pl: PromptLayer) -> None:
    with pytest.raises(PromptLayerNotFoundError):
        pl.run("no-such-template")


def test_run_missing_an_input_variable_renders_it_empty_with_or_without_the_cache(
    peer_server: RunningServer, pl: PromptLayer, stored: StoredLog
) -> None:
    # Without a cache the server renders; with one the peer renders: the same text either way.
    result = pl.run("openai", input_variables={"name": "Ada"})
    cached = PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, cache_ttl_seconds=60
    )
    again = cached.run("openai", input_variables={"name": "Ada"})
    for request_id in (result["request_id"], again["request_id"]):
        assert stored.request(request_id)["body"]["kwargs"]["messages"][1] == {
            "role": "user",
            "content": "Hello Ada, about ",
        }


def test_a_caching_clients_run_sends_the_locally_rendered_prompt(
    peer_server: RunningServer, stored: StoredLog
) -> None:
    cached = PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, cache_ttl_seconds=60
    )
    first = cached.run("openai", input_variables=GREETING)
    second = cached.run("openai", input_variables={"name": "Bo", "topic": "rain"})
    assert stored.request(first["request_id"])["body"]["kwargs"]["messages"][1] == {
        "role": "user",
        "content": "Hello Ada, about tea",
    }
    record = stored.request(second["request_id"])
    assert record["body"]["kwargs"]["messages"][1]["content"] == "Hello Bo, about rain"
    assert record["input_variables"] == {"name": "Bo", "topic": "rain"}
    assert "Hello Bo, about rain" in response_text("openai", second["raw_response"])


def test_a_provider_error_is_reraised_and_stored_as_an_error_record(
    pl: PromptLayer, stored: StoredLog
) -> None:
    before = stored.total()
    # retry_after keeps the OpenAI SDK's own retries quick; 5 outlasts its 3 attempts.
    stored.sandbox(
        {"fail": [{"status": 429, "provider": "openai", "times": 5, "retry_after": 0.01}]}
    )
    try:
        with pytest.raises(openai.RateLimitError):
            pl.run("openai", input_variables=GREETING, tags=["doomed"])
    finally:
        stored.sandbox_reset()
    assert stored.total() == before + 1
    record = stored.latest()
    assert record["status"] == "ERROR"
    assert record["error_type"] == "PROVIDER_RATE_LIMIT"
    assert "429" in record["error_message"] or "rate" in record["error_message"].lower()
    assert record["provider"] == "openai"
    assert record["model"] == MODELS["openai"]["name"]
    assert record["tags"] == ["doomed"]
    assert (record["input_tokens"], record["output_tokens"]) == (0, 0)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_call_reply_is_stored_with_its_tool_call(
    pl: PromptLayer, stored: StoredLog, provider: str
) -> None:
    template = {**chat("Use the tool for {name}, {topic}"), "tools": [WEATHER_TOOL]}
    publish(pl, f"tools-{provider}", provider, template=template)
    result = pl.run(f"tools-{provider}", input_variables=GREETING)
    record = stored.request(result["request_id"])
    last = record["prompt_blueprint"]["prompt_template"]["messages"][-1]
    assert last["role"] == "assistant"
    assert [call["function"]["name"] for call in last["tool_calls"]] == ["get_weather"]
    assert "city" in last["tool_calls"][0]["function"]["arguments"]


RESPONSES_MODEL = {"provider": "openai", "name": OPENAI_MODEL, "parameters": {}}


def test_a_responses_api_template_runs_and_is_stored_as_responses(
    pl: PromptLayer, stored: StoredLog
) -> None:
    publish(pl, "responses", model={**RESPONSES_MODEL, "api_type": "responses"})
    result = pl.run("responses", input_variables=GREETING)
    assert result["raw_response"].output_text.startswith("Sandbox reply to: Hello Ada")
    record = stored.request(result["request_id"])
    assert (record["api_type"], record["function_name"]) == ("responses", "openai.responses.create")
    assert assistant_text(record) == result["raw_response"].output_text
    assert record["output_tokens"] > 0


def test_a_streamed_responses_api_run_is_stored(pl: PromptLayer, stored: StoredLog) -> None:
    publish(pl, "responses-stream", model={**RESPONSES_MODEL, "api_type": "responses"})
    *_, last = pl.run("responses-stream", input_variables=GREETING, stream=True)
    assert stored.request(last["request_id"])["api_type"] == "responses"
