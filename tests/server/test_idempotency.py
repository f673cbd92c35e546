"""``Idempotency-Key`` on the PromptLayer logging endpoints: a record sent again (its answer
was lost) is stored once and answered as the first time; without the header (the peer SDK)
every request is a new record, as on the hosted API."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import Api, log_body, track_body

pytestmark = pytest.mark.anyio


async def _rows(api: Api) -> list[dict[str, Any]]:
    return (await api.requests(limit=100))["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [("/track-request", track_body(), 200), ("/log-request", log_body(), 201)],
    ids=["track-request", "log-request"],
)
async def test_a_record_sent_twice_with_its_key_is_stored_once_and_answered_the_same(
    api: Api, path: str, body: dict[str, Any], status: int
) -> None:
    key = {"Idempotency-Key": "req_0123456789abcdef"}
    first = await api.call("POST", path, body, headers=key)
    again = await api.call("POST", path, body, headers=key)
    assert first[0] == again[0] == status
    assert again[1] == first[1]
    [row] = await _rows(api)
    assert row["client_request_id"] == "req_0123456789abcdef"
    assert (await api.request("req_0123456789abcdef"))["id"] == row["id"]


async def test_a_record_sent_through_ingest_after_its_inline_answer_was_lost_is_not_stored_again(
    api: Api,
) -> None:
    _, inline = await api.call(
        "POST", "/log-request", log_body(), headers={"Idempotency-Key": "req_lost"}
    )
    batch = {"records": [{"type": "log", "client_request_id": "req_lost", "body": log_body()}]}
    [result] = (await api.ok("POST", "/promptrun/v1/ingest", batch))["results"]
    assert (result["status"], result["request_id"]) == ("duplicate", inline["id"])
    assert len(await _rows(api)) == 1


async def test_without_the_header_each_request_is_a_new_record_as_from_the_peer_sdk(
    api: Api,
) -> None:
    for _ in range(2):
        assert (await api.call("POST", "/track-request", track_body()))[0] == 200
        assert (await api.call("POST", "/log-request", log_body()))[0] == 201
    rows = await _rows(api)
    assert len(rows) == 4
    assert {r["client_request_id"] for r in rows} == {None}


async def test_keys_are_per_workspace(api: Api) -> None:
    from ._api import OTHER_KEY

    key = {"Idempotency-Key": "req_shared"}
    await api.call("POST", "/log-request", log_body(), headers=key)
    await api.call("POST", "/log-request", log_body(), headers=key, key=OTHER_KEY)
    assert len(await _rows(api)) == 1
    assert len((await api.requests(key=OTHER_KEY))["items"]) == 1


async def test_a_track_call_sent_again_with_its_key_is_not_applied_again(api: Api) -> None:
    _, logged = await api.call("POST", "/log-request", log_body())
    for score in (10, 20):  # the second one a retry: any change it carries is not applied
        status, answer = await api.call(
            "POST",
            "/library-track-score",
            {"request_id": logged["id"], "score": score},
            headers={"Idempotency-Key": "call_1"},
        )
        assert (status, answer) == (200, {"success": True})
    assert (await api.request(logged["id"]))["scores"] == {"default": 10}


@pytest.mark.parametrize("value", ["", "k" * 513])
async def test_a_key_that_cannot_be_a_client_id_is_a_400_naming_the_header(
    api: Api, value: str
) -> None:
    status, answer = await api.call(
        "POST", "/log-request", log_body(), headers={"Idempotency-Key": value}
    )
    assert status == 400
    assert "Idempotency-Key" in answer["message"]
    assert "512" in answer["message"]
    assert await _rows(api) == []
