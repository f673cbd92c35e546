"""The logging endpoints: track and log requests, then score, tag, link and group them."""

from __future__ import annotations

import pytest

from ._api import KEY, Api, log_body, track_body

pytestmark = pytest.mark.anyio


async def test_track_request_answers_200_with_an_id_and_the_logged_blueprint(api: Api) -> None:
    # The peer SDK sends the key in the body only.
    status, answer = await api.call("POST", "/track-request", track_body(api_key=KEY), key=None)
    assert status == 200
    assert answer["success"] is True
    assert isinstance(answer["request_id"], int)
    messages = answer["prompt_blueprint"]["prompt_template"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"][0]["text"] == "Hi Ada"
    assert answer["prompt_blueprint"]["metadata"]["model"]["parameters"] == {"temperature": 0.5}


async def test_a_tracked_request_is_stored_with_derived_fields(api: Api) -> None:
    _, answer = await api.call("POST", "/track-request", {**track_body(), "api_key": KEY})
    stored = await api.request(answer["request_id"])
    assert stored["provider"] == "openai"
    assert stored["model"] == "gpt-4o-mini"
    assert (stored["input_tokens"], stored["output_tokens"]) == (11, 3)
    assert stored["tags"] == ["t1"]
    assert stored["metadata"] == {"user": "u1"}
    assert stored["input_variables"] == {"name": "Ada"}
    assert stored["request_start_time"] == 1_700_000_000.0
    assert stored["status"] == "SUCCESS"
    assert stored["prompt_blueprint"] == answer["prompt_blueprint"]
    assert "api_key" not in stored["body"]


async def test_a_provider_failure_record_is_stored_too(api: Api) -> None:
    body = track_body(
        request_response={},
        status="ERROR",
        error_type="PROVIDER_RATE_LIMIT",
        error_message="429 slow down",
    )
    _, answer = await api.call("POST", "/track-request", body)
    stored = await api.request(answer["request_id"])
    assert stored["status"] == "ERROR"
    assert stored["error_type"] == "PROVIDER_RATE_LIMIT"
    assert [m["role"] for m in stored["prompt_blueprint"]["prompt_template"]["messages"]] == [
        "user"
    ]


async def test_a_request_from_another_provider_is_stored_and_described(api: Api) -> None:
    body = track_body(provider_type="mistral", function_name="mistral.client.chat")
    status, answer = await api.call("POST", "/track-request", body)
    assert status == 200
    assert answer["prompt_blueprint"]["metadata"]["model"]["provider"] == "mistral"
    assert (await api.request(answer["request_id"]))["provider"] == "mistral"


async def test_track_request_links_the_template_by_id(api: Api) -> None:
    published = await api.publish("greet")
    _, answer = await api.call(
        "POST", "/track-request", track_body(prompt_id=published["id"], prompt_version=1)
    )
    stored = await api.request(answer["request_id"])
    assert stored["prompt_name"] == "greet"
    assert stored["prompt_version"] == 1
    listed = await api.requests(prompt_name="greet")
    assert [i["id"] for i in listed["items"]] == [answer["request_id"]]


async def test_iso_timestamps_are_accepted_as_well_as_epoch_seconds(api: Api) -> None:
    body = track_body(request_start_time="2024-05-01T12:00:00Z")
    _, answer = await api.call("POST", "/track-request", body)
    stored = await api.request(answer["request_id"])
    assert stored["request_start_time"] == 1714564800.0


async def test_log_request_answers_201_with_the_input_and_output_as_one_template(
    api: Api,
) -> None:
    status, answer = await api.call("POST", "/log-request", log_body())
    assert status == 201
    assert answer["id"] == answer["request_id"]
    messages = answer["prompt_version"]["prompt_template"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert answer["prompt_version"]["metadata"]["model"] == {
        "provider": "openai",
        "name": "gpt-4o",
        "parameters": {"temperature": 1},
    }
    stored = await api.request(answer["id"])
    assert (stored["input_tokens"], stored["output_tokens"], stored["price"]) == (5, 7, 0.01)
    assert stored["kind"] == "log"


async def test_log_request_with_a_named_score_records_it(api: Api) -> None:
    _, answer = await api.call("POST", "/log-request", log_body(score=80, score_name="quality"))
    stored = await api.request(answer["id"])
    assert stored["scores"] == {"quality": 80}


async def test_log_request_rejects_an_input_that_is_not_a_template(api: Api) -> None:
    status, answer = await api.call("POST", "/log-request", log_body(input={"messages": []}))
    assert status == 400
    assert "input must be a prompt template" in answer["message"]
    assert (await api.requests())["total"] == 0


async def test_track_metadata_score_and_prompt_update_the_request(api: Api) -> None:
    await api.publish("greet", labels=["prod"])
    _, tracked = await api.call("POST", "/track-request", track_body())
    rid = tracked["request_id"]
    for path, body in [
        ("/library-track-metadata", {"request_id": rid, "metadata": {"session": "s1"}}),
        ("/library-track-score", {"request_id": rid, "score": 90}),
        ("/library-track-score", {"request_id": rid, "score": 40, "name": "tone"}),
        (
            "/library-track-prompt",
            {
                "request_id": rid,
                "prompt_name": "greet",
                "prompt_input_variables": {"name": "Bo"},
                "version": None,
                "label": "prod",
            },
        ),
    ]:
        status, answer = await api.call("POST", path, {**body, "api_key": KEY}, key=None)
        assert (status, answer) == (200, {"success": True})
    stored = await api.request(rid)
    assert stored["metadata"] == {"user": "u1", "session": "s1"}
    assert stored["scores"] == {"default": 90, "tone": 40}
    assert stored["score"] == 90
    assert (stored["prompt_name"], stored["prompt_version"]) == ("greet", 1)
    assert stored["input_variables"] == {"name": "Bo"}


async def test_groups_are_created_and_requests_put_in_them(api: Api) -> None:
    _, created = await api.call("POST", "/create-group", {"api_key": KEY}, key=None)
    assert created["success"] is True
    group = created["id"]
    _, tracked = await api.call("POST", "/track-request", track_body(group_id=group))
    _, other = await api.call("POST", "/track-request", track_body())
    status, _ = await api.call(
        "POST", "/track-group", {"request_id": other["request_id"], "group_id": group}
    )
    assert status == 200
    assert (await api.request(tracked["request_id"]))["groups"] == [group]
    assert (await api.request(other["request_id"]))["groups"] == [group]


async def test_a_request_put_in_a_group_later_shows_it_as_its_group_id_too(api: Api) -> None:
    groups = [(await api.call("POST", "/create-group", {"api_key": KEY}, key=None))[1]["id"]
              for _ in range(2)]  # fmt: skip
    _, logged = await api.call("POST", "/track-request", track_body())
    for group in groups:
        body = {"request_id": logged["request_id"], "group_id": group}
        assert (await api.call("POST", "/track-group", body))[0] == 200
    stored = await api.request(logged["request_id"])
    assert (stored["group_id"], stored["groups"]) == (groups[0], groups)  # the first one
    _, listed = await api.call("GET", "/promptrun/v1/requests?limit=1000")
    [item] = [i for i in listed["items"] if i["id"] == logged["request_id"]]
    assert item["group_id"] == groups[0]


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/library-track-score", {"request_id": 999, "score": 5}, "request 999 not found"),
        ("/library-track-metadata", {"request_id": "req_x", "metadata": {}}, "'req_x' not found"),
        ("/track-group", {"request_id": 1, "group_id": 77}, "group 77 not found"),
        ("/track-request", track_body(group_id=77), "group 77 not found"),
        ("/library-track-prompt", {"request_id": 1, "prompt_name": "nope"}, "'nope' not found"),
    ],
)
async def test_track_calls_on_unknown_things_are_404s(
    api: Api, path: str, body: dict[str, object], fragment: str
) -> None:
    await api.call("POST", "/track-request", track_body())
    status, answer = await api.call("POST", path, body)
    assert status == 404
    assert fragment in answer["message"]


@pytest.mark.parametrize("score", [-1, 101, 5.5, "90"])
async def test_a_score_outside_0_to_100_or_not_an_int_is_a_400(api: Api, score: object) -> None:
    _, tracked = await api.call("POST", "/track-request", track_body())
    status, answer = await api.call(
        "POST", "/library-track-score", {"request_id": tracked["request_id"], "score": score}
    )
    assert status == 400
    assert "score" in answer["message"]


async def test_the_peers_scrambled_async_track_prompt_body_is_a_400_not_a_500(api: Api) -> None:
    # AsyncPromptLayer.track.prompt sends its arguments in the wrong slots.
    body = {
        "request_id": True,
        "prompt_name": 5,
        "prompt_input_variables": "greet",
        "version": {},
        "label": 1,
    }
    status, answer = await api.call("POST", "/library-track-prompt", body)
    assert status == 400
    assert "request_id" in answer["message"]


async def test_metadata_values_must_be_strings(api: Api) -> None:
    _, tracked = await api.call("POST", "/track-request", track_body())
    status, answer = await api.call(
        "POST",
        "/library-track-metadata",
        {"request_id": tracked["request_id"], "metadata": {"n": 1}},
    )
    assert status == 400
    assert "metadata" in answer["message"]


async def test_request_list_is_newest_first_with_paging(api: Api) -> None:
    ids = [(await api.call("POST", "/track-request", track_body()))[1]["request_id"] for _ in "abc"]
    page = await api.requests(limit=2, offset=0)
    assert [i["id"] for i in page["items"]] == ids[::-1][:2]
    assert page["total"] == 3
    assert "body" not in page["items"][0]
