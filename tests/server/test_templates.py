"""The prompt registry endpoints: publish, fetch (rendered for a provider), list."""

from __future__ import annotations

import pytest

from ._api import CHAT, OPENAI_MODEL, Api

pytestmark = pytest.mark.anyio

VARS = {"name": "Ada", "topic": "engines"}


async def test_publish_creates_version_one_and_answers_201_with_its_identity(api: Api) -> None:
    answer = await api.publish("greet", labels=["prod"], tags=["demo"])
    assert answer["prompt_name"] == "greet"
    assert answer["version_number"] == 1
    assert answer["release_labels"] == ["prod"]
    assert answer["tags"] == ["demo"]
    assert answer["prompt_template"] == CHAT
    assert isinstance(answer["id"], int)
    assert isinstance(answer["prompt_version_id"], int)


async def test_publishing_again_appends_a_version_and_moves_the_label(api: Api) -> None:
    first = await api.publish(labels=["prod"])
    second = await api.publish(metadata={**OPENAI_MODEL, "v": 2}, labels=["prod"])
    assert second["version_number"] == 2
    assert second["id"] == first["id"]
    _, v1 = await api.fetch(version=1)
    assert v1["release_labels"] == []
    _, by_label = await api.fetch(label="prod")
    assert by_label["version"] == 2


async def test_publish_accepts_the_peer_sdks_duplicated_body(api: Api) -> None:
    # templates.publish(body) sends the same dict under both keys.
    body = {
        "prompt_name": "dup",
        "tags": ["x"],
        "prompt_template": CHAT,
        "commit_message": "first",
        "metadata": OPENAI_MODEL,
        "release_labels": ["staging"],
    }
    answer = await api.ok(
        "POST",
        "/rest/prompt-templates",
        {"prompt_template": body, "prompt_version": body, "release_labels": ["staging"]},
    )
    assert answer["commit_message"] == "first"
    assert answer["release_labels"] == ["staging"]


async def test_fetch_renders_variables_and_builds_openai_kwargs(api: Api) -> None:
    published = await api.publish()
    status, answer = await api.fetch(input_variables=VARS)
    assert status == 200
    assert answer["id"] == published["id"]
    assert answer["version"] == 1
    assert answer["prompt_template"]["messages"][1]["content"][0]["text"] == (
        "Hello Ada, about engines"
    )
    assert answer["llm_kwargs"]["model"] == "gpt-4o-mini"
    assert answer["llm_kwargs"]["temperature"] == 0.5
    assert answer["llm_kwargs"]["messages"][1]["content"] == "Hello Ada, about engines"
    assert answer["metadata"]["model"]["provider"] == "openai"
    assert answer["provider_base_url"] is None
    assert answer["snippets"] == []


async def test_fetch_without_variables_returns_the_template_unrendered(api: Api) -> None:
    await api.publish()
    _, answer = await api.fetch()
    assert answer["prompt_template"] == CHAT
    assert "{name}" in answer["llm_kwargs"]["messages"][1]["content"]


async def test_skip_rendering_builds_kwargs_from_the_unrendered_template(api: Api) -> None:
    await api.publish()
    _, answer = await api.fetch(input_variables=VARS, skip_input_variable_rendering=True)
    assert answer["prompt_template"] == CHAT
    assert answer["llm_kwargs"]["messages"][1]["content"] == "Hello {name}, about {topic}"


async def test_a_missing_variable_renders_empty_as_the_hosted_api_renders_it(api: Api) -> None:
    await api.publish()
    status, answer = await api.fetch(input_variables={"name": "Ada"})
    assert status == 200
    assert answer["llm_kwargs"]["messages"][1]["content"] == "Hello Ada, about "


async def test_provider_and_model_overrides_rebuild_kwargs_for_that_provider(api: Api) -> None:
    await api.publish()
    _, answer = await api.fetch(
        input_variables=VARS, provider="anthropic", model="claude-3-5-haiku-latest"
    )
    assert answer["metadata"]["model"]["provider"] == "anthropic"
    assert answer["llm_kwargs"]["model"] == "claude-3-5-haiku-latest"
    assert answer["llm_kwargs"]["system"]
    assert "max_tokens" in answer["llm_kwargs"]


async def test_model_parameter_overrides_land_in_the_kwargs(api: Api) -> None:
    await api.publish()
    _, answer = await api.fetch(model_parameter_overrides={"temperature": 0.1, "seed": 7})
    assert answer["llm_kwargs"]["temperature"] == 0.1
    assert answer["llm_kwargs"]["seed"] == 7


async def test_fetch_by_version_and_by_label(api: Api) -> None:
    await api.publish(labels=["old"])
    await api.publish(template={**CHAT, "messages": CHAT["messages"][:1]}, labels=["new"])
    _, latest = await api.fetch()
    _, first = await api.fetch(version=1)
    _, old = await api.fetch(label="old")
    assert latest["version"] == 2
    assert first["version"] == 1
    assert len(first["prompt_template"]["messages"]) == 2
    assert old["version"] == 1


async def test_metadata_filters_pick_the_newest_matching_version_or_fall_back(api: Api) -> None:
    await api.publish(metadata={**OPENAI_MODEL, "segment": "a"})
    await api.publish(metadata={**OPENAI_MODEL, "segment": "b"})
    _, a = await api.fetch(metadata_filters={"segment": "a"})
    _, none = await api.fetch(metadata_filters={"user": "someone"})
    _, plain = await api.fetch()
    assert a["version"] == 1
    assert none["version"] == 2
    # The fallback is said, for callers that select by metadata; the peer SDK ignores it.
    assert a["metadata_filters_matched"] is True
    assert none["metadata_filters_matched"] is False
    assert "metadata_filters_matched" not in plain


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "'nope' not found"),
        ({"version": 9}, "no version 9"),
        ({"label": "gone"}, "no release label 'gone'"),
    ],
)
async def test_unknown_template_version_or_label_is_a_404_naming_it(
    api: Api, params: dict[str, object], fragment: str
) -> None:
    await api.publish()
    name = "nope" if not params else "greet"
    status, answer = await api.fetch(name, **params)
    assert status == 404
    assert fragment in answer["message"]


async def test_names_with_slashes_and_spaces_round_trip(api: Api) -> None:
    await api.publish("team/sub folder/greet")
    status, answer = await api.fetch("team/sub folder/greet")
    assert status == 200
    assert answer["prompt_name"] == "team/sub folder/greet"


async def test_list_pages_through_templates_at_their_latest_version(api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.publish(name)
    await api.publish("b", metadata={**OPENAI_MODEL, "v": 2})
    page = await api.ok("GET", "/prompt-templates?page=1&per_page=2")
    assert [i["prompt_name"] for i in page["items"]] == ["a", "b"]
    assert page["items"][1]["version"] == 2
    assert page["total"] == 3
    assert page["page"] == 1
    assert page["per_page"] == 2
    assert "llm_kwargs" not in page["items"][0]
    rest = await api.ok("GET", "/prompt-templates?page=2&per_page=2")
    assert [i["prompt_name"] for i in rest["items"]] == ["c"]


async def test_list_with_a_label_shows_only_labelled_templates_at_that_version(api: Api) -> None:
    await api.publish("a", labels=["prod"])
    await api.publish("a", metadata={**OPENAI_MODEL, "v": 2})
    await api.publish("b")
    page = await api.ok("GET", "/prompt-templates?label=prod")
    assert [(i["prompt_name"], i["version"]) for i in page["items"]] == [("a", 1)]
    assert page["total"] == 1


async def test_list_rejects_a_bad_page_number(api: Api) -> None:
    status, answer = await api.call("GET", "/prompt-templates?page=0")
    assert status == 400
    assert "page" in answer["message"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ({"type": "poem"}, "prompt_version.prompt_template.type"),
        ({"type": "chat", "messages": "hi"}, "messages must be a list"),
        ({"type": "chat", "messages": [{"role": "boss", "content": []}]}, "role"),
        ({"type": "chat", "messages": [{"role": "user", "content": "hi"}]}, "content"),
        (
            {
                "type": "chat",
                "messages": [
                    {
                        "role": "user",
                        "template_format": "jinja2",
                        "content": [{"type": "text", "text": "{% if x %}open"}],
                    }
                ],
            },
            "not valid jinja2",
        ),
        ({"type": "completion", "content": [{"text": "no type"}]}, "content[0]"),
    ],
)
async def test_publish_rejects_a_malformed_template_with_a_400_naming_the_place(
    api: Api, template: dict[str, object], fragment: str
) -> None:
    status, answer = await api.call(
        "POST",
        "/rest/prompt-templates",
        {
            "prompt_template": {"prompt_name": "bad"},
            "prompt_version": {"prompt_template": template},
        },
    )
    assert status == 400
    assert fragment in answer["message"]
    assert (await api.fetch("bad"))[0] == 404


async def test_publish_rejects_a_model_without_a_provider(api: Api) -> None:
    status, answer = await api.call(
        "POST",
        "/rest/prompt-templates",
        {
            "prompt_template": {"prompt_name": "bad"},
            "prompt_version": {"prompt_template": CHAT, "metadata": {"model": {"name": "x"}}},
        },
    )
    assert status == 400
    assert "metadata.model.provider" in answer["message"]


async def test_a_template_without_a_model_comes_back_without_kwargs(api: Api) -> None:
    await api.publish("plain", metadata={})
    _, answer = await api.fetch("plain")
    assert answer["llm_kwargs"] is None


async def test_a_cached_fetch_sees_a_new_publish_at_once(api: Api) -> None:
    await api.publish(labels=["prod"])
    assert (await api.fetch(label="prod"))[1]["version"] == 1
    await api.publish(metadata={**OPENAI_MODEL, "v": 2}, labels=["prod"])
    assert (await api.fetch(label="prod"))[1]["version"] == 2
    assert (await api.fetch())[1]["version"] == 2
