"""promptrun's batch ingestion: idempotent by client id, rejections one by one."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import OTHER_KEY, Api, log_body, track_body

pytestmark = pytest.mark.anyio


def track(cid: str, **overrides: Any) -> dict[str, Any]:
    return {"type": "track", "client_request_id": cid, "body": track_body(**overrides)}


def log(cid: str, **overrides: Any) -> dict[str, Any]:
    return {"type": "log", "client_request_id": cid, "body": log_body(**overrides)}


def call(cid: str, endpoint: str, **body: Any) -> dict[str, Any]:
    return {"type": "track_call", "client_request_id": cid, "endpoint": endpoint, "body": body}


async def ingest(api: Api, *records: dict[str, Any], key: str | None = None) -> list[Any]:
    kwargs = {} if key is None else {"key": key}
    answer = await api.ok("POST", "/promptrun/v1/ingest", {"records": list(records)}, **kwargs)
    return answer["results"]  # type: ignore[no-any-return]


async def test_info_names_the_ingest_features_without_a_key(api: Api) -> None:
    status, info = await api.call("GET", "/promptrun/v1/info", key=None)
    assert status == 200
    assert info["server"] == "promptrun"
    assert {"ingest", "client-request-ids"} <= set(info["features"])


async def test_a_batch_is_stored_in_order_with_one_result_each(api: Api) -> None:
    results = await ingest(api, track("c1"), log("c2"))
    assert [(r["client_request_id"], r["status"]) for r in results] == [
        ("c1", "stored"),
        ("c2", "stored"),
    ]
    assert results[1]["request_id"] > results[0]["request_id"]
    stored = await api.request("c1")
    assert stored["id"] == results[0]["request_id"]
    assert stored["client_request_id"] == "c1"
    assert stored["output_tokens"] == 3


async def test_the_same_batch_twice_is_stored_once(api: Api) -> None:
    batch = [track("c1"), log("c2"), call("k1", "score", request_id="c1", score=70)]
    first = await ingest(api, *batch)
    second = await ingest(api, *batch)
    assert [r["status"] for r in second] == ["duplicate"] * 3
    assert [r["request_id"] for r in second] == [r["request_id"] for r in first]
    assert (await api.requests())["total"] == 2


async def test_a_repeat_inside_one_batch_is_a_duplicate(api: Api) -> None:
    results = await ingest(api, track("c1"), track("c1"))
    assert [r["status"] for r in results] == ["stored", "duplicate"]
    assert results[0]["request_id"] == results[1]["request_id"]


async def test_bad_records_are_rejected_alone_and_the_rest_stored(api: Api) -> None:
    results = await ingest(
        api,
        track("ok1"),
        {"type": "track", "client_request_id": "bad1", "body": {"kwargs": {}}},
        log("bad2", input={"type": "chat"}),
        track("bad3", group_id=12345),
        call("bad4", "score", request_id="missing", score=1),
        call("bad5", "score", request_id="ok1", score=500),
        track("", tags=[]),
        track("ok2"),
    )
    statuses = {r["client_request_id"]: r["status"] for r in results}
    assert statuses == {
        "ok1": "stored",
        "bad1": "rejected",
        "bad2": "rejected",
        "bad3": "rejected",
        "bad4": "rejected",
        "bad5": "rejected",
        "": "rejected",
        "ok2": "stored",
    }
    errors = {r["client_request_id"]: r.get("error", "") for r in results}
    assert "function_name" in errors["bad1"]
    assert "group 12345 not found" in errors["bad3"]
    assert "'missing' not found" in errors["bad4"]
    assert (await api.requests())["total"] == 2


async def test_track_calls_find_a_client_id_from_the_same_batch(api: Api) -> None:
    results = await ingest(
        api,
        track("c1"),
        call("k1", "metadata", request_id="c1", metadata={"a": "b"}),
        call("k2", "score", request_id="c1", score=55, name="q"),
    )
    assert [r["status"] for r in results] == ["stored"] * 3
    assert results[1]["request_id"] == results[0]["request_id"]
    stored = await api.request("c1")
    assert stored["metadata"]["a"] == "b"
    assert stored["scores"] == {"q": 55}


async def test_track_calls_find_a_client_id_stored_earlier(api: Api) -> None:
    await ingest(api, track("c1"))
    group = (await api.ok("POST", "/create-group", {}))["id"]
    results = await ingest(api, call("k1", "group", request_id="c1", group_id=group))
    assert results[0]["status"] == "stored"
    assert (await api.request("c1"))["groups"] == [group]


async def test_rest_track_calls_accept_a_client_request_id(api: Api) -> None:
    await ingest(api, track("req_abc"))
    status, _ = await api.call(
        "POST", "/library-track-score", {"request_id": "req_abc", "score": 12}
    )
    assert status == 200
    assert (await api.request("req_abc"))["score"] == 12


async def test_client_ids_are_per_workspace(api: Api) -> None:
    mine = await ingest(api, track("c1"))
    theirs = await ingest(api, track("c1"), key=OTHER_KEY)
    assert theirs[0]["status"] == "stored"
    assert theirs[0]["request_id"] != mine[0]["request_id"]
    status, _ = await api.call("GET", "/promptrun/v1/requests/c1", key=OTHER_KEY)
    assert status == 200


async def test_an_unknown_record_type_fails_the_batch_with_a_400(api: Api) -> None:
    status, answer = await api.call(
        "POST",
        "/promptrun/v1/ingest",
        {"records": [track("c1"), {"type": "nope", "client_request_id": "x", "body": {}}]},
    )
    assert status == 400
    assert "records" in answer["message"]
    assert (await api.requests())["total"] == 0
