"""The peer SDK and promptrun, side by side against one server: what each call returns.

Every result a caller reads has the peer's keys and, where the server decides it, the same
value. The differences left are the documented ones (README, "Differences from the PromptLayer
SDK"): ids made on the client are strings, and logging failures do not reach the caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promptlayer
import pytest

import promptrun
from promptrun.testing import RunningServer

from ._peer import GREETING, MODELS

PROVIDERS = list(MODELS)


@pytest.fixture
def ours(peer_server: RunningServer, tmp_path: Path) -> Iterator[promptrun.PromptLayer]:
    client = promptrun.PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, spool_dir=tmp_path
    )
    yield client
    client.close()


def log_kwargs() -> dict[str, Any]:
    now = time.time()
    return {
        "provider": "openai",
        "model": "gpt-4o",
        "input": {
            "type": "chat",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        },
        "output": {
            "type": "chat",
            "messages": [{"role": "assistant", "content": [{"type": "text", "text": "Yo"}]}],
        },
        "request_start_time": now - 1,
        "request_end_time": now,
        "parameters": {"temperature": 0.2},
        "api_type": "chat-completions",
    }


def same_blueprint(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """The same conversation and model. (The peer's model parameters are what the server read
    back from the provider kwargs, for Google the whole generation_config; ours are the
    template's: documented.)"""
    assert mine.keys() == theirs.keys()
    assert mine["prompt_template"] == theirs["prompt_template"]
    model, their_model = mine["metadata"]["model"], theirs["metadata"]["model"]
    assert model.keys() == their_model.keys()
    assert (model["provider"], model["name"]) == (their_model["provider"], their_model["name"])
    if model["provider"] != "google":
        assert model == their_model


@pytest.mark.parametrize("provider", PROVIDERS)
def test_run_returns_the_peers_keys_response_type_and_prompt_blueprint(
    pl: promptlayer.PromptLayer, ours: promptrun.PromptLayer, provider: str
) -> None:
    theirs = pl.run(provider, input_variables=GREETING)
    mine = ours.run(provider, input_variables=GREETING)
    assert mine.keys() == theirs.keys()
    assert type(mine["raw_response"]) is type(theirs["raw_response"])
    same_blueprint(mine["prompt_blueprint"], theirs["prompt_blueprint"])
    assert isinstance(theirs["request_id"], int)
    assert isinstance(mine["request_id"], str)  # made on the client: documented


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_yields_as_many_items_as_the_peers_and_ends_with_the_same_blueprint(
    pl: promptlayer.PromptLayer, ours: promptrun.PromptLayer, provider: str
) -> None:
    # The ids as each item arrives (the peer's last item is the one before it, mutated).
    their_ids: list[Any] = []
    theirs = [i for i in pl.run(provider, input_variables=GREETING, stream=True)
              if their_ids.append(i["request_id"]) or True]  # fmt: skip
    mine = list(ours.run(provider, input_variables=GREETING, stream=True))
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        assert a.keys() == b.keys()
        assert type(a["raw_response"]) is type(b["raw_response"])
    assert [i["request_id"] is None for i in mine] == [i is None for i in their_ids]
    same_blueprint(mine[-1]["prompt_blueprint"], theirs[-1]["prompt_blueprint"])
    # Each item's blueprint ends with the assistant message so far; the peer's holds only the
    # delta of that chunk (documented): both end in the same message shape.
    for a, b in zip(mine[:-1], theirs[:-1], strict=True):
        mine_last = a["prompt_blueprint"]["prompt_template"]["messages"][-1]
        their_last = b["prompt_blueprint"]["prompt_template"]["messages"][-1]
        assert mine_last.keys() == their_last.keys()
        assert mine_last["role"] == their_last["role"] == "assistant"


def test_log_request_returns_the_peers_keys_and_the_prompt_version_the_server_stores(
    pl: promptlayer.PromptLayer, ours: promptrun.PromptLayer
) -> None:
    theirs = pl.log_request(**log_kwargs())
    mine = ours.log_request(**log_kwargs())
    assert mine is not None
    assert mine.keys() == theirs.keys()
    assert mine["prompt_version"] == theirs["prompt_version"]
    assert mine["id"] == mine["request_id"]
    assert ours.flush(10)


@pytest.mark.anyio
async def test_the_async_log_request_returns_the_same_shape(
    apl: promptlayer.AsyncPromptLayer, peer_server: RunningServer, tmp_path: Path
) -> None:
    kwargs = log_kwargs()
    del kwargs["api_type"]  # the peer's async log_request has no api_type parameter
    theirs = await apl.log_request(**kwargs)
    async with promptrun.AsyncPromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, spool_dir=tmp_path
    ) as client:
        mine = await client.log_request(**kwargs)
    assert mine is not None
    assert mine.keys() == theirs.keys()
    assert mine["prompt_version"] == theirs["prompt_version"]


def test_templates_get_and_all_return_what_the_peer_returns(
    pl: promptlayer.PromptLayer, ours: promptrun.PromptLayer
) -> None:
    assert ours.templates.get("openai") == pl.templates.get("openai")
    params = {"label": "prod", "input_variables": GREETING}
    assert ours.templates.get("openai", params) == pl.templates.get("openai", params)
    assert ours.templates.all(per_page=2) == pl.templates.all(per_page=2)


def test_group_create_and_track_calls_return_the_peers_types(
    pl: promptlayer.PromptLayer, ours: promptrun.PromptLayer
) -> None:
    theirs = pl.run("openai", input_variables=GREETING)
    mine = ours.run("openai", input_variables=GREETING)
    assert type(ours.group.create()) is type(pl.group.create()) is int
    assert pl.track.score(theirs["request_id"], 10) is True
    assert ours.track.score(mine["request_id"], 10) is True
    assert ours.flush(10)


def test_with_throw_on_error_false_failures_return_the_peers_sentinels(
    peer_server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kwargs: dict[str, Any] = {"api_key": "pl_wrong", "base_url": peer_server.base_url}
    peer = promptlayer.PromptLayer(throw_on_error=False, **kwargs)
    mine = promptrun.PromptLayer(throw_on_error=False, spool_dir=tmp_path, **kwargs)
    try:
        for call in (
            lambda c: c.templates.get("openai"),
            lambda c: c.templates.all(),
            lambda c: c.group.create(),
        ):
            assert call(mine) == call(peer)
        assert mine.templates.get("openai") is None
        assert mine.templates.all() == []
        assert mine.group.create() is False
    finally:
        mine.close()
    ours_warnings = [r.getMessage() for r in caplog.records if r.name == "promptlayer"]
    assert ours_warnings
    assert all(m.startswith("WARNING: ") for m in ours_warnings if "401" in m)
