"""Exactly once through lost answers: a proxy on loopback passes each request to the server,
which stores it, then drops the connection before the answer reaches the client. The client
sends the record again (inline logging ships it in the background; one request per record
retries it), and the server, knowing its client id, stores it once."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from promptrun.testing import RunningServer

from .._clients import Factory, Probe
from .._cut_proxy import CutProxy

pytestmark = pytest.mark.anyio

CHAT = {"type": "chat", "messages": []}
VARIABLES = {"name": "A", "topic": "b"}
INFO = "/promptrun/v1/info"


def log_args(i: int) -> tuple[Any, ...]:
    now = time.time()
    return ("openai", "gpt-4o", CHAT, CHAT, now - 1, now, None, [f"d{i}"])


async def _stored_once(probe: Probe, expected: int) -> list[dict[str, Any]]:
    rows = await probe.requests()
    counts = Counter(r["client_request_id"] for r in rows)
    assert len(rows) == expected, counts
    assert None not in counts  # every record came with its client id, inline ones too
    assert max(counts.values()) == 1
    return rows


async def test_inline_records_whose_answers_are_lost_are_stored_once(
    make_client: Factory, probe: Probe, provider_env: RunningServer
) -> None:
    await probe.publish("greet")
    async with CutProxy(provider_env.base_url, cut_all=("/log-request", "/track-request")) as proxy:
        async with make_client(base_url=proxy.base_url, inline_logging=True) as pl:
            ids = [(await pl.log_request(*log_args(i)))["id"] for i in range(10)]
            runs = [await pl.run("greet", input_variables=VARIABLES) for _ in range(2)]
            assert await pl.flush(timeout=30)
            assert pl.stats()["failed"] == 0
        assert (proxy.cuts("/log-request"), proxy.cuts("/track-request")) == (10, 2)
    rows = await _stored_once(probe, 12)
    # Not answered inline, so each call returned its client id: the one the server stored.
    assert {r["client_request_id"] for r in rows} == {*ids, *(r["request_id"] for r in runs)}


async def test_records_shipped_one_request_each_whose_answers_are_lost_are_stored_once(
    make_client: Factory, probe: Probe, provider_env: RunningServer
) -> None:
    await probe.publish("greet")
    paths = ("/log-request", "/track-request", "/library-track-score")
    async with CutProxy(provider_env.base_url, cut_every_other=paths, hide=(INFO,)) as proxy:
        async with make_client(base_url=proxy.base_url) as pl:
            for i in range(10):
                await pl.log_request(*log_args(i))
            runs = [await pl.run("greet", input_variables=VARIABLES) for _ in range(2)]
            assert await pl.track.score(runs[0]["request_id"], 42)
            assert await pl.flush(timeout=60)
            stats = pl.stats()
            assert (stats["shipped"], stats["failed"]) == (13, 0)
        assert [proxy.cuts(p) for p in paths] == [10, 2, 1]
        # A retry carries the key of the attempt whose answer was lost.
        for path in paths:
            keys = [f.idempotency_key for f in proxy.seen if f.path == path]
            assert None not in keys
            assert keys[0::2] == keys[1::2]
    rows = await _stored_once(probe, 12)
    [scored] = [r for r in rows if r["client_request_id"] == runs[0]["request_id"]]
    assert (await probe.request(scored["id"]))["scores"] == {"default": 42}


async def test_the_sync_client_logs_inline_once_through_a_lost_answer(
    provider_env: RunningServer, probe: Probe, tmp_path: Any
) -> None:
    from promptrun import PromptLayer

    async with CutProxy(provider_env.base_url, cut_all=("/log-request",)) as proxy:
        url = proxy.base_url

        def log_three() -> None:
            with PromptLayer(
                api_key=provider_env.api_key, base_url=url, spool_dir=tmp_path, inline_logging=True
            ) as pl:
                for i in range(3):
                    pl.log_request(*log_args(i))
                assert pl.flush(30)

        import anyio.to_thread

        await anyio.to_thread.run_sync(log_three)
        assert proxy.cuts("/log-request") == 3
    await _stored_once(probe, 3)


# The hosted API's shapes: what the peer SDK sends, and the header beside it.
PEER_TRACK_KEYS = {
    "function_name", "provider_type", "args", "kwargs", "tags", "request_start_time",
    "request_end_time", "api_key", "metadata", "prompt_id", "prompt_version",
    "prompt_input_variables", "group_id", "return_prompt_blueprint", "span_id",
    "request_response", "status", "error_type", "error_message",
}  # fmt: skip
PEER_LOG_KEYS = {
    "provider", "model", "input", "output", "request_start_time", "request_end_time",
    "parameters", "tags", "metadata", "prompt_name", "prompt_version_number",
    "prompt_input_variables", "input_tokens", "output_tokens", "price", "function_name",
    "score", "prompt_id", "score_name", "api_type", "status", "error_type", "error_message",
}  # fmt: skip


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "one-request-each"])
async def test_on_the_hosted_api_a_record_is_named_in_a_header_and_its_body_keeps_the_peers_shape(
    inline: bool, provider_env: RunningServer, tmp_path: Any
) -> None:
    from promptrun import AsyncPromptLayer

    from .._registry_stub import chat_template, stub_registry

    with stub_registry() as stub:
        stub.publish("greet", chat_template())
        # The first inline run's answer is not the API's: it ships in the background too.
        stub.queue("/track-request", {"status": 200, "text": "<html></html>"})
        async with AsyncPromptLayer(
            api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path, inline_logging=inline
        ) as pl:
            ran = [await pl.run("greet", input_variables={"name": "Ada"}) for _ in range(2)]
            await pl.log_request(*log_args(0))
            assert await pl.track.score(ran[1]["request_id"], 5)
            assert await pl.flush(timeout=30)
        sent = {
            path: [s for s in stub.seen if s.path == path]
            for path in ("/track-request", "/log-request", "/library-track-score")
        }
    for path, keys in (("/track-request", PEER_TRACK_KEYS), ("/log-request", PEER_LOG_KEYS)):
        for seen in sent[path]:
            assert seen.headers["Idempotency-Key"].startswith("req_")
            assert set(json.loads(seen.body)) <= keys
    [score] = sent["/library-track-score"]
    assert score.headers["Idempotency-Key"].startswith("req_")
    # The first run's record, not taken, was sent again: with its key, and the same body.
    by_key: dict[str, list[bytes]] = {}
    for seen in sent["/track-request"]:
        by_key.setdefault(seen.headers["Idempotency-Key"], []).append(seen.body)
    assert sorted(len(bodies) for bodies in by_key.values()) == [1, 2]
    [(lost, again)] = [bodies for bodies in by_key.values() if len(bodies) == 2]
    assert lost == again
