"""The peer SDK (``promptlayer`` 1.5.16), unchanged, against ``promptrun serve``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from promptlayer import AsyncPromptLayer, PromptLayer, PromptLayerNotFoundError

from promptrun.testing import RunningServer

from ._api import CHAT, OPENAI_MODEL


@pytest.fixture
def pl(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> PromptLayer:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox")
    monkeypatch.setenv("OPENAI_BASE_URL", server.sandbox_url("openai"))
    return PromptLayer(api_key=server.api_key, base_url=server.base_url)


def publish(pl: PromptLayer, name: str = "greet", **extra: Any) -> Any:
    return pl.templates.publish(
        {
            "prompt_name": name,
            "prompt_template": CHAT,
            "metadata": OPENAI_MODEL,
            "commit_message": "v1",
            "release_labels": ["prod"],
            **extra,
        }
    )


def test_peer_publishes_fetches_and_lists_templates(pl: PromptLayer) -> None:
    published = publish(pl, tags=["demo"])
    assert published["version_number"] == 1
    got = pl.templates.get(
        "greet", {"label": "prod", "input_variables": {"name": "Ada", "topic": "tea"}}
    )
    assert got["llm_kwargs"]["messages"][1]["content"] == "Hello Ada, about tea"
    assert [t["prompt_name"] for t in pl.templates.all()] == ["greet"]


def test_peer_gets_its_not_found_error_for_an_unknown_template(pl: PromptLayer) -> None:
    with pytest.raises(PromptLayerNotFoundError, match="not found"):
        pl.templates.get("missing")


def test_peer_run_calls_the_sandbox_and_logs_through_track_request(pl: PromptLayer) -> None:
    publish(pl)
    result = pl.run(
        "greet",
        input_variables={"name": "Ada", "topic": "tea"},
        tags=["peer"],
        metadata={"user": "u1"},
    )
    request_id = result["request_id"]
    assert isinstance(request_id, int)
    messages = result["prompt_blueprint"]["prompt_template"]["messages"]
    assert messages[-1]["role"] == "assistant"
    assert pl.track.score(request_id, 75)
    assert pl.track.metadata(request_id, {"session": "s1"})
    assert pl.track.prompt(request_id, "greet", {"name": "Ada"}, label="prod")
    group = pl.group.create()
    assert isinstance(group, int)
    assert pl.track.group(request_id, group)


def test_peer_log_request_gets_its_201(pl: PromptLayer) -> None:
    now = time.time()
    logged = pl.log_request(
        provider="openai",
        model="gpt-4o",
        input={
            "type": "chat",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        },
        output={
            "type": "chat",
            "messages": [{"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
        },
        request_start_time=now - 1,
        request_end_time=now,
        score=60,
        score_name="q",
    )
    assert isinstance(logged["id"], int)
    assert logged["prompt_version"]["prompt_template"]["messages"][-1]["role"] == "assistant"


@pytest.mark.anyio
async def test_async_peer_fetches_and_logs(server: RunningServer, pl: PromptLayer) -> None:
    publish(pl)
    apl = AsyncPromptLayer(api_key=server.api_key, base_url=server.base_url)
    got = await apl.templates.get("greet", {"input_variables": {"name": "Bo", "topic": "x"}})
    assert got["prompt_template"]["messages"][1]["content"][0]["text"] == "Hello Bo, about x"
    assert await apl.group.create()
