"""Keys and workspaces: where a key may be sent, and what another workspace can see."""

from __future__ import annotations

import pytest

from ._api import KEY, OTHER_KEY, Api, track_body

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "placement",
    ["header", "bearer", "body"],
)
async def test_a_key_is_accepted_in_the_header_as_a_bearer_token_or_in_the_body(
    api: Api, placement: str
) -> None:
    body = track_body()
    headers = {}
    if placement == "header":
        headers["X-API-KEY"] = KEY
    elif placement == "bearer":
        headers["Authorization"] = f"Bearer {KEY}"
    else:
        body["api_key"] = KEY
    status, answer = await api.call("POST", "/track-request", body, key=None, headers=headers)
    assert status == 200, answer


async def test_a_missing_key_is_a_401_that_says_where_to_put_one(api: Api) -> None:
    status, answer = await api.call("POST", "/track-request", track_body(), key=None)
    assert status == 401
    assert answer["success"] is False
    assert "X-API-KEY" in answer["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/prompt-templates/greet", {}),
        ("GET", "/prompt-templates", None),
        ("POST", "/track-request", track_body()),
        ("POST", "/create-group", {}),
        ("POST", "/promptrun/v1/ingest", {"records": []}),
        ("GET", "/promptrun/v1/requests", None),
    ],
)
async def test_an_unknown_key_is_a_401_everywhere(
    api: Api, method: str, path: str, body: object
) -> None:
    status, answer = await api.call(method, path, body, key="pl_wrong")
    assert status == 401
    assert "unknown API key" in answer["message"]


async def test_health_needs_no_key(api: Api) -> None:
    assert await api.call("GET", "/health", key=None) == (200, {"status": "ok"})


async def test_templates_of_one_workspace_are_invisible_to_another(api: Api) -> None:
    await api.publish("greet")
    status, _answer = await api.fetch("greet", key=OTHER_KEY)
    assert status == 404
    listed = await api.ok("GET", "/prompt-templates", key=OTHER_KEY)
    assert listed["items"] == []
    assert listed["total"] == 0


async def test_the_same_template_name_lives_separately_in_two_workspaces(api: Api) -> None:
    mine = await api.publish("greet")
    theirs = await api.publish("greet", key=OTHER_KEY)
    assert theirs["version_number"] == 1
    assert theirs["id"] != mine["id"]


async def test_guessed_request_and_group_ids_from_another_workspace_are_not_found(
    api: Api,
) -> None:
    _, tracked = await api.call("POST", "/track-request", track_body())
    rid = tracked["request_id"]
    group = (await api.ok("POST", "/create-group", {}))["id"]
    for path, body in [
        ("/library-track-score", {"request_id": rid, "score": 1}),
        ("/library-track-metadata", {"request_id": rid, "metadata": {"a": "b"}}),
        ("/track-group", {"request_id": rid, "group_id": group}),
    ]:
        status, _ = await api.call("POST", path, body, key=OTHER_KEY)
        assert status == 404, path
    _, theirs = await api.call("POST", "/track-request", track_body(), key=OTHER_KEY)
    status, _ = await api.call(
        "POST",
        "/track-group",
        {"request_id": theirs["request_id"], "group_id": group},
        key=OTHER_KEY,
    )
    assert status == 404
    assert (await api.call("GET", f"/promptrun/v1/requests/{rid}", key=OTHER_KEY))[0] == 404
    assert (await api.requests(key=OTHER_KEY))["total"] == 1
    assert (await api.request(rid))["scores"] == {}


async def test_another_workspaces_template_id_is_not_linked_to_a_request(api: Api) -> None:
    theirs = await api.publish("secret", key=OTHER_KEY)
    _, tracked = await api.call("POST", "/track-request", track_body(prompt_id=theirs["id"]))
    stored = await api.request(tracked["request_id"])
    assert stored["prompt_id"] is None
    assert stored["prompt_name"] is None
