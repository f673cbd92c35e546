"""The prompt lifecycle over HTTP: release labels moved without publishing (the PromptLayer
API's label endpoints), and publishing that creates nothing when nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import CHAT, OPENAI_MODEL, OTHER_KEY, Api

pytestmark = pytest.mark.anyio

V2 = {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi {name}"}]}]}
V3 = {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "Yo {name}"}]}]}


async def three_versions(api: Api) -> dict[str, Any]:
    first = await api.publish(labels=["prod"])
    await api.publish(template=V2, labels=["staging"])
    await api.publish(template=V3)
    return first


async def prod_version(api: Api) -> int:
    _, answer = await api.fetch(label="prod")
    return int(answer["version"])


async def test_posting_a_label_promotes_version_three_to_prod_without_publishing(
    api: Api,
) -> None:
    first = await three_versions(api)
    moved = await api.ok(
        "POST", "/prompts/greet/label", {"name": "prod", "prompt_version_number": 3}
    )
    assert moved["name"] == "prod"
    assert (moved["prompt_id"], moved["prompt_name"]) == (first["id"], "greet")
    assert (moved["prompt_version_number"], moved["previous_version_number"]) == (3, 1)
    assert isinstance(moved["prompt_version_id"], int)
    assert moved["created_at"].endswith("Z")
    assert await prod_version(api) == 3
    listed = await api.ok("GET", "/prompt-templates", None)
    assert [item["version"] for item in listed["items"]] == [3]  # no new version


async def test_a_label_is_created_by_prompt_id_and_rolled_back_by_label_id(api: Api) -> None:
    first = await three_versions(api)
    made = await api.ok(
        "POST", f"/prompts/{first['id']}/label", {"name": "canary", "prompt_version_number": 2}
    )
    assert made["previous_version_number"] is None
    rolled = await api.ok("PATCH", f"/prompt-labels/{made['id']}", {"prompt_version_number": 1})
    assert (rolled["id"], rolled["prompt_version_number"], rolled["previous_version_number"]) == (
        made["id"],
        1,
        2,
    )
    _, by_label = await api.fetch(label="canary")
    assert by_label["version"] == 1


async def test_the_labels_of_a_template_are_listed_by_name_or_id(api: Api) -> None:
    first = await three_versions(api)
    by_name = await api.ok("GET", "/prompt-templates/greet/labels")
    by_id = await api.ok("GET", f"/prompt-templates/{first['id']}/labels")
    assert by_name == by_id
    assert by_name["prompt_name"] == "greet"
    assert [
        (x["release_label"], x["prompt_version_number"]) for x in by_name["release_labels"]
    ] == [("prod", 1), ("staging", 2)]
    assert all(isinstance(x["release_label_id"], int) for x in by_name["release_labels"])


async def test_deleting_a_label_removes_it_and_says_where_it_was(api: Api) -> None:
    await three_versions(api)
    labels = (await api.ok("GET", "/prompt-templates/greet/labels"))["release_labels"]
    staging = next(x for x in labels if x["release_label"] == "staging")
    gone = await api.ok("DELETE", f"/prompt-labels/{staging['release_label_id']}")
    assert (gone["removed"], gone["prompt_version_number"]) == (True, 2)
    status, answer = await api.fetch(label="staging")
    assert status == 404
    assert "its labels: 'prod'" in answer["message"]


async def test_a_name_with_a_slash_has_its_labels_listed_and_moved(api: Api) -> None:
    await api.publish("team/greet", labels=["prod"])
    await api.publish("team/greet", template=V2)
    listed = await api.ok("GET", "/prompt-templates/team%2Fgreet/labels")
    assert listed["prompt_name"] == "team/greet"
    moved = await api.ok(
        "POST", "/prompts/team%2Fgreet/label", {"name": "prod", "prompt_version_number": 2}
    )
    assert moved["prompt_version_number"] == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/prompts/greet/label", {"name": "prod", "prompt_version_number": 9}, 404,
         "'greet' has no version 9; versions are 1..3"),
        ("POST", "/prompts/nope/label", {"name": "prod", "prompt_version_number": 1}, 404,
         "prompt template 'nope' not found"),
        ("POST", "/prompts/greet/label", {"name": "  ", "prompt_version_number": 1}, 400,
         "name must be a non-empty release label"),
        ("POST", "/prompts/greet/label", {"name": "prod"}, 400, "prompt_version_number"),
        ("POST", "/prompts/greet/label", {"name": "p", "prompt_version_number": 0}, 400,
         ">= 1"),
        ("POST", "/prompts/greet/label", {"name": "p", "prompt_version_number": 1, "x": 1},
         400, "unknown field"),
        ("PATCH", "/prompt-labels/999999", {"prompt_version_number": 1}, 404,
         "release label 999999 not found"),
        ("PATCH", "/prompt-labels/abc", {"prompt_version_number": 1}, 400,
         "release label id 'abc' must be a positive integer"),
        ("DELETE", "/prompt-labels/99999999999999999999", None, 400, "positive integer"),
        ("GET", "/prompt-templates/nope/labels", None, 404, "'nope' not found"),
    ],
)  # fmt: skip
async def test_label_requests_that_cannot_be_done_say_why(
    api: Api, method: str, path: str, body: Any, status: int, message: str
) -> None:
    await three_versions(api)
    got, answer = await api.call(method, path, body)
    assert (got, answer["success"]) == (status, False), answer
    assert message in answer["message"]
    assert await prod_version(api) == 1


async def test_another_workspaces_labels_cannot_be_seen_or_moved(api: Api) -> None:
    first = await three_versions(api)
    labels = (await api.ok("GET", "/prompt-templates/greet/labels"))["release_labels"]
    label_id = labels[0]["release_label_id"]
    for method, path, body in [
        ("GET", "/prompt-templates/greet/labels", None),
        ("GET", f"/prompt-templates/{first['id']}/labels", None),
        ("POST", f"/prompts/{first['id']}/label", {"name": "prod", "prompt_version_number": 2}),
        ("PATCH", f"/prompt-labels/{label_id}", {"prompt_version_number": 2}),
        ("DELETE", f"/prompt-labels/{label_id}", None),
    ]:
        status, _ = await api.call(method, path, body, key=OTHER_KEY)
        assert status == 404, (method, path)
    assert await prod_version(api) == 1
    status, _ = await api.call("GET", "/prompt-templates/greet/labels", key=None)
    assert status == 401


async def test_a_fetch_by_label_sees_the_move_at_once(api: Api) -> None:
    await three_versions(api)
    assert await prod_version(api) == 1  # warms the server's version cache
    await api.ok("POST", "/prompts/greet/label", {"name": "prod", "prompt_version_number": 2})
    assert await prod_version(api) == 2


async def test_publishing_the_latest_content_again_answers_200_unchanged(api: Api) -> None:
    first = await api.publish(labels=["prod"])
    assert first["unchanged"] is False
    body = {
        "prompt_template": {"prompt_name": "greet"},
        "prompt_version": {"prompt_template": CHAT, "metadata": OPENAI_MODEL},
        "release_labels": ["prod"],
    }
    status, again = await api.call("POST", "/rest/prompt-templates", body)
    assert (status, again["unchanged"], again["version_number"]) == (200, True, 1)
    assert again["prompt_version_id"] == first["prompt_version_id"]
    assert again["release_labels"] == ["prod"]
    # A label not yet on the latest version is a change: a new version carries it.
    status, labelled = await api.call(
        "POST", "/rest/prompt-templates", {**body, "release_labels": ["beta"]}
    )
    assert (status, labelled["unchanged"], labelled["version_number"]) == (201, False, 2)


async def test_the_peer_sdks_publish_of_unchanged_content_succeeds(api: Api) -> None:
    # templates.publish(body) sends the same dict under both keys; the sync SDK accepts any
    # status but 400, so a 200 is a success to it.
    body = {"prompt_name": "dup", "prompt_template": CHAT, "metadata": OPENAI_MODEL}
    wire = {"prompt_template": body, "prompt_version": body, "release_labels": None}
    first = await api.call("POST", "/rest/prompt-templates", wire)
    second = await api.call("POST", "/rest/prompt-templates", wire)
    assert (first[0], second[0]) == (201, 200)
    assert second[1]["version_number"] == 1
