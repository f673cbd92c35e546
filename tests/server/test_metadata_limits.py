"""Metadata is bounded wherever it is taken: at most 1,000 keys, keys of up to 512 characters,
values of up to 1,000 (a value that is not a string: its JSON), a string value and its key
2,000 bytes of UTF-8. Past a limit the answer is a 400 naming it and saying what to do; in an
ingest batch only that record is rejected."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import Api, log_body, track_body
from .test_workflows import answer, publish

pytestmark = pytest.mark.anyio

MANY = {str(i): "v" for i in range(1_001)}
AT_LIMITS = {
    **{f"k{i}": "v" for i in range(997)},
    "long": "v" * 1_000,
    "k" * 512: "v",
    "wide": "漢" * 665,  # 1,995 bytes with its key
}
# What each limit's message says: the limit, and where long or bulky data belongs instead.
TOO_MANY = ("1,001 keys", "1,000", "input, output or prompt_input_variables")
LONG_KEY = ("513 characters", "512", "shorter key")
LONG_VALUE = ("1,001 characters", "1,000", "input, output or prompt_input_variables")
WIDE_VALUE = ("2,101 bytes of UTF-8 with its key", "2,000", "2 to 4 bytes")

CASES = [
    (MANY, TOO_MANY),
    ({"k" * 513: "v"}, LONG_KEY),
    ({"note": "v" * 1_001}, LONG_VALUE),
    ({"k": "漢" * 700}, WIDE_VALUE),  # 700 characters, but 2,100 bytes: past a database index
]


async def _request_id(api: Api) -> int:
    return int((await api.ok("POST", "/log-request", log_body()))["id"])


def _says(message: str, expected: tuple[str, ...]) -> None:
    assert "metadata" in message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(("metadata", "expected"), CASES, ids=["keys", "key", "value", "bytes"])
@pytest.mark.parametrize("path", ["/log-request", "/track-request", "/library-track-metadata"])
async def test_metadata_past_a_limit_is_a_400_naming_it_and_nothing_is_stored(
    api: Api, path: str, metadata: dict[str, str], expected: tuple[str, ...]
) -> None:
    body: dict[str, Any]
    if path == "/library-track-metadata":
        body = {"request_id": await _request_id(api), "metadata": metadata}
    else:
        body = (log_body if path == "/log-request" else track_body)(metadata=metadata)
    status, got = await api.call("POST", path, body)
    assert status == 400, got
    _says(got["message"], expected)
    rows = (await api.requests())["items"]
    assert len(rows) == (1 if path == "/library-track-metadata" else 0)
    if rows:
        assert (await api.request(rows[0]["id"]))["metadata"] == {"source": "test"}


async def test_a_value_that_is_not_a_string_is_counted_as_its_json(api: Api) -> None:
    status, got = await api.call("POST", "/log-request", log_body(metadata={"n": 7, "ok": True}))
    assert status == 201, got
    bulky = {"doc": {"text": "x" * 995}}  # {"text":"xxx..."}: 1,006 characters
    status, got = await api.call("POST", "/log-request", log_body(metadata=bulky))
    assert status == 400
    _says(got["message"], ("'doc'", "1,000", "as JSON"))


async def test_metadata_at_the_limits_is_stored_whole(api: Api) -> None:
    for path, body in (
        ("/log-request", log_body(metadata=AT_LIMITS)),
        ("/track-request", track_body(metadata=AT_LIMITS)),
    ):
        status, got = await api.call("POST", path, body)
        assert status in (200, 201), got
        stored = await api.request(got.get("request_id", got.get("id")))
        assert stored["metadata"] == AT_LIMITS
        assert "metadata_truncated" not in stored
    rid = await _request_id(api)
    call = {"request_id": rid, "metadata": AT_LIMITS}
    assert (await api.call("POST", "/library-track-metadata", call))[0] == 200
    assert (await api.request(rid))["metadata"] == {"source": "test", **AT_LIMITS}


@pytest.mark.parametrize(("metadata", "expected"), CASES, ids=["keys", "key", "value", "bytes"])
async def test_an_ingest_record_past_a_metadata_limit_is_rejected_alone(
    api: Api, metadata: dict[str, str], expected: tuple[str, ...]
) -> None:
    records = [
        {"type": "log", "client_request_id": "bad", "body": log_body(metadata=metadata)},
        {"type": "track", "client_request_id": "bad2", "body": track_body(metadata=metadata)},
        {"type": "log", "client_request_id": "good", "body": log_body()},
        {"type": "track_call", "client_request_id": "call", "endpoint": "metadata",
         "body": {"request_id": "good", "metadata": metadata}},
    ]  # fmt: skip
    results = (await api.ok("POST", "/promptrun/v1/ingest", {"records": records}))["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "stored", "rejected"]
    for result in (results[0], results[1], results[3]):
        _says(result["error"], expected)


async def test_a_workflow_run_takes_996_metadata_keys_leaving_room_for_its_own(
    api: Api,
) -> None:
    await publish(api, "flow", answer(1))
    too_many = {str(i): "v" for i in range(997)}
    status, got = await api.call("POST", "/workflows/flow/run", {"metadata": too_many})
    assert status == 400
    _says(got["message"], ("997 keys", "996", "4 keys of its own"))
    status, got = await api.call(
        "POST", "/workflows/flow/run", {"metadata": dict(list(too_many.items())[:996])}
    )
    assert status == 201, got
    status, got = await api.call("POST", "/workflows/flow/run", {"metadata": {"k": "v" * 1001}})
    assert status == 400
    _says(got["message"], LONG_VALUE[:2])
