"""The PromptLayer endpoints take bodies from SDK releases newer than ours: unknown keys are
ignored there, known keys keep their strict types, and a logged status is one the log knows."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import CHAT, OPENAI_MODEL, Api, log_body, track_body

pytestmark = pytest.mark.anyio

FUTURE = {"zzz_added_in_a_later_sdk": {"nested": [1, 2]}}


async def test_every_peer_sdk_endpoint_ignores_a_key_it_does_not_know(api: Api) -> None:
    published = await api.publish("greet")
    assert published["version_number"] == 1
    status, fetched = await api.fetch("greet", **FUTURE)
    assert status == 200 and fetched["version"] == 1

    status, tracked = await api.call("POST", "/track-request", track_body(**FUTURE))
    assert status == 200, tracked
    status, logged = await api.call("POST", "/log-request", log_body(**FUTURE))
    assert status == 201, logged
    request_id = tracked["request_id"]
    status, group = await api.call("POST", "/create-group", FUTURE)
    assert status == 200, group
    calls = {
        "/library-track-metadata": {"request_id": request_id, "metadata": {"k": "v"}},
        "/library-track-score": {"request_id": request_id, "score": 80},
        "/library-track-prompt": {"request_id": request_id, "prompt_name": "greet"},
        "/track-group": {"request_id": request_id, "group_id": group["id"]},
    }
    for path, body in calls.items():
        status, answer = await api.call("POST", path, {**body, **FUTURE})
        assert status == 200, (path, answer)

    stored = await api.request(request_id)
    assert stored["metadata"] == {"user": "u1", "k": "v"}
    assert stored["score"] == 80
    assert "zzz_added_in_a_later_sdk" not in str(stored)


async def test_a_publish_with_unknown_keys_at_every_level_is_stored(api: Api) -> None:
    body = {
        "prompt_template": {"prompt_name": "greet", **FUTURE},
        "prompt_version": {"prompt_template": CHAT, "metadata": OPENAI_MODEL, **FUTURE},
        **FUTURE,
    }
    status, answer = await api.call("POST", "/rest/prompt-templates", body)
    assert status == 201, answer
    assert answer["version_number"] == 1


async def test_a_workflow_run_with_an_unknown_key_starts(api: Api) -> None:
    definition = {"nodes": [{"name": "out", "type": "value", "configuration": {"value": 1},
                             "is_output_node": True}]}  # fmt: skip
    status, got = await api.call(
        "POST", "/rest/workflows", {"workflow_name": "w", "definition": definition}
    )
    assert status == 201, got
    status, got = await api.call("POST", "/workflows/w/run", {"input_variables": {}, **FUTURE})
    assert status == 201, got
    assert got["workflow_version_execution_id"] >= 1


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/track-request", track_body(tags="t1", **FUTURE), "$.tags"),
        ("/log-request", log_body(input_tokens=-1, **FUTURE), "$.input_tokens"),
        ("/library-track-score", {"request_id": 1, "score": 101, **FUTURE}, "$.score"),
        ("/prompt-templates/greet", {"version": "one", **FUTURE}, "$.version"),
    ],
)
async def test_known_keys_keep_their_types_next_to_unknown_ones(
    api: Api, path: str, body: dict[str, Any], fragment: str
) -> None:
    status, answer = await api.call("POST", path, body)
    assert status == 400
    assert fragment in answer["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/prompts/greet/label", {"name": "prod", "prompt_version_number": 1, **FUTURE}),
        ("/promptrun/v1/ingest", {"records": [], **FUTURE}),
        ("/rest/workflows", {"workflow_name": "w", "definition": {"nodes": []}, **FUTURE}),
    ],
)
async def test_promptruns_own_endpoints_still_refuse_unknown_keys(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    await api.publish("greet")
    status, answer = await api.call("POST", path, body)
    assert status == 400
    assert "unknown field `zzz_added_in_a_later_sdk`" in answer["message"]


@pytest.mark.parametrize("path", ["/log-request", "/track-request"])
@pytest.mark.parametrize("status_value", ["BANANA", "\u202e\u0000", "", "OK"])
async def test_a_status_the_log_does_not_know_is_a_400_listing_the_allowed_ones(
    api: Api, path: str, status_value: str
) -> None:
    body = (
        log_body(status=status_value) if path == "/log-request" else track_body(status=status_value)
    )
    status, answer = await api.call("POST", path, body)
    assert status == 400
    assert "status must be one of SUCCESS, WARNING, ERROR" in answer["message"]
    assert (await api.requests())["items"] == []


async def test_a_status_in_lower_case_is_stored_in_upper_case(api: Api) -> None:
    status, logged = await api.call("POST", "/log-request", log_body(status="error"))
    assert status == 201, logged
    status, tracked = await api.call("POST", "/track-request", track_body(status="Warning"))
    assert status == 200, tracked
    assert (await api.request(logged["id"]))["status"] == "ERROR"
    assert (await api.request(tracked["request_id"]))["status"] == "WARNING"


async def test_an_ingested_record_with_an_unknown_status_is_rejected_by_itself(api: Api) -> None:
    records = [
        {"type": "log", "client_request_id": "a", "body": log_body(status="BANANA")},
        {"type": "log", "client_request_id": "b", "body": log_body(status="ERROR", **FUTURE)},
    ]
    answer = await api.ok("POST", "/promptrun/v1/ingest", {"records": records})
    first, second = answer["results"]
    assert first["status"] == "rejected"
    assert "status must be one of SUCCESS, WARNING, ERROR" in first["error"]
    assert second["status"] == "stored"
