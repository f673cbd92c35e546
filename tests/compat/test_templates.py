"""The peer's prompt registry calls: publish, get (version, label, overrides, cache), list."""

from __future__ import annotations

import pytest
from promptlayer import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerAuthenticationError,
    PromptLayerBadRequestError,
    PromptLayerNotFoundError,
)

from promptrun.testing import RunningServer

from ._peer import ANTHROPIC_MODEL, GREETING, chat, publish


def _user_text(template: dict[str, object]) -> str:
    messages = template["messages"]
    assert isinstance(messages, list)
    return str(messages[1]["content"][0]["text"])


def test_publish_returns_the_new_version_with_its_labels_and_tags(pl: PromptLayer) -> None:
    first = publish(pl, "pub", labels=["prod", "staging"], tags=["demo"])
    second = publish(pl, "pub", template=chat("Bye {name}"), labels=["staging"])
    assert first["version_number"] == 1
    assert sorted(first["release_labels"]) == ["prod", "staging"]
    assert first["tags"] == ["demo"]
    assert second["version_number"] == 2
    assert second["id"] == first["id"]
    assert second["release_labels"] == ["staging"]
    # Publishing a label that is in use moves it; the others stay where they were.
    assert pl.templates.get("pub", {"label": "staging"})["version"] == 2
    assert pl.templates.get("pub", {"label": "prod"})["version"] == 1


def test_publishing_an_invalid_template_raises_the_peers_bad_request_error(
    pl: PromptLayer,
) -> None:
    with pytest.raises(PromptLayerBadRequestError, match="prompt_name"):
        publish(pl, "  ")
    with pytest.raises(PromptLayerBadRequestError, match="messages"):
        publish(pl, "broken", template={"type": "chat"})


def test_get_without_params_returns_the_latest_version_unrendered(pl: PromptLayer) -> None:
    publish(pl, "latest")
    publish(pl, "latest", template=chat("Second {name}"))
    got = pl.templates.get("latest")
    assert got["version"] == 2
    assert got["prompt_name"] == "latest"
    assert _user_text(got["prompt_template"]) == "Second {name}"
    assert got["metadata"]["model"]["provider"] == "openai"
    assert got["llm_kwargs"]["model"] == "gpt-4o-mini"


def test_get_picks_a_version_by_number_and_by_release_label(pl: PromptLayer) -> None:
    publish(pl, "pick", labels=["prod"])
    publish(pl, "pick", template=chat("Newer {name}"), labels=["staging"])
    by_version = pl.templates.get("pick", {"version": 1})
    by_label = pl.templates.get("pick", {"label": "staging"})
    by_old_label = pl.templates.get("pick", {"label": "prod"})
    assert by_version["version"] == 1
    assert _user_text(by_version["prompt_template"]) == "Hello {name}, about {topic}"
    assert by_label["version"] == 2
    assert by_old_label["version"] == 1


def test_get_with_input_variables_renders_the_template_and_the_llm_kwargs(
    pl: PromptLayer,
) -> None:
    publish(pl, "render")
    got = pl.templates.get("render", {"input_variables": GREETING})
    assert _user_text(got["prompt_template"]) == "Hello Ada, about tea"
    assert got["llm_kwargs"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello Ada, about tea"},
    ]
    assert got["llm_kwargs"]["temperature"] == 0.5


def test_get_with_missing_input_variables_renders_them_empty_as_the_hosted_api_does(
    pl: PromptLayer,
) -> None:
    publish(pl, "render-missing")
    got = pl.templates.get("render-missing", {"input_variables": {"name": "Ada"}})
    assert _user_text(got["prompt_template"]) == "Hello Ada, about "
    assert got["llm_kwargs"]["messages"][1] == {"role": "user", "content": "Hello Ada, about "}
    empty = pl.templates.get("render-missing", {"input_variables": {}})
    assert _user_text(empty["prompt_template"]) == "Hello , about "


def test_get_with_a_provider_and_model_override_builds_kwargs_for_the_new_provider(
    pl: PromptLayer,
) -> None:
    publish(pl, "switch")
    got = pl.templates.get(
        "switch",
        {"provider": "anthropic", "model": ANTHROPIC_MODEL, "input_variables": GREETING},
    )
    model = got["metadata"]["model"]
    assert model["provider"] == "anthropic"
    assert model["name"] == ANTHROPIC_MODEL
    assert model["parameters"]["max_tokens"] > 0
    kwargs = got["llm_kwargs"]
    assert kwargs["model"] == ANTHROPIC_MODEL
    assert kwargs["max_tokens"] == model["parameters"]["max_tokens"]
    assert kwargs["system"] == "You are terse."
    assert [m["role"] for m in kwargs["messages"]] == ["user"]


def test_metadata_filters_pick_the_newest_version_whose_metadata_matches(
    pl: PromptLayer,
) -> None:
    model = {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}
    for audience in ("kids", "adults", None):
        metadata: dict[str, object] = {"model": model}
        if audience:
            metadata["audience"] = audience
        pl.templates.publish(
            {"prompt_name": "by-meta", "prompt_template": chat(), "metadata": metadata}
        )
    assert pl.templates.get("by-meta", {"metadata_filters": {"audience": "kids"}})["version"] == 1
    assert pl.templates.get("by-meta", {"metadata_filters": {"audience": "adults"}})["version"] == 2
    # No match: the filters are taken as request metadata and the latest version is used.
    assert pl.templates.get("by-meta", {"metadata_filters": {"user": "u1"}})["version"] == 3


def test_get_of_a_missing_template_raises_the_peers_not_found_error(pl: PromptLayer) -> None:
    with pytest.raises(PromptLayerNotFoundError, match="not found") as caught:
        pl.templates.get("missing")
    assert caught.value.response.status_code == 404


def test_get_of_a_missing_template_without_throw_on_error_returns_none(
    peer_server: RunningServer,
) -> None:
    quiet = PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, throw_on_error=False
    )
    assert quiet.templates.get("missing") is None
    assert quiet.templates.get("openai", {"version": 99}) is None


def test_a_wrong_api_key_gets_the_peers_authentication_error(
    peer_server: RunningServer,
) -> None:
    stranger = PromptLayer(api_key="pl_wrong", base_url=peer_server.base_url)
    with pytest.raises(PromptLayerAuthenticationError):
        stranger.templates.get("openai")


def test_a_name_with_a_slash_is_published_and_fetched(pl: PromptLayer) -> None:
    publish(pl, "team/greet")
    got = pl.templates.get("team/greet", {"input_variables": GREETING})
    assert got["prompt_name"] == "team/greet"
    assert _user_text(got["prompt_template"]) == "Hello Ada, about tea"


def test_the_client_reads_its_key_and_base_url_from_the_environment(
    peer_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTLAYER_API_KEY", peer_server.api_key)
    monkeypatch.setenv("PROMPTLAYER_BASE_URL", peer_server.base_url)
    assert PromptLayer().templates.get("openai")["prompt_name"] == "openai"


def test_all_pages_through_templates_and_filters_by_label(peer_server: RunningServer) -> None:
    with_labels = PromptLayer(api_key=peer_server.api_key, base_url=peer_server.base_url)
    names = {t["prompt_name"] for t in with_labels.templates.all(per_page=1000)}
    assert {"openai", "anthropic", "google"} <= names
    pages = [with_labels.templates.all(page=p, per_page=2) for p in range(1, 4)]
    assert all(len(page) <= 2 for page in pages)
    paged = [t["prompt_name"] for page in pages for t in page]
    assert len(paged) == len(set(paged)) == min(6, len(names))
    publish(with_labels, "only-canary", labels=["canary"])
    assert [t["prompt_name"] for t in with_labels.templates.all(label="canary")] == ["only-canary"]
    assert with_labels.templates.all(label="no-such-label") == []


@pytest.mark.parametrize(
    ("template_format", "text"),
    [("f-string", "Hi {name}, {topic}?"), ("jinja2", "Hi {{ name }}, {{ topic | upper }}?")],
)
def test_a_caching_client_renders_locally_and_serves_repeats_from_its_cache(
    peer_server: RunningServer, template_format: str, text: str
) -> None:
    name = f"cached-{template_format}"
    publisher = PromptLayer(api_key=peer_server.api_key, base_url=peer_server.base_url)
    publish(publisher, name, template=chat(text, template_format))
    cached = PromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, cache_ttl_seconds=60
    )
    expected = "Hi Ada, tea?" if template_format == "f-string" else "Hi Ada, TEA?"
    first = cached.templates.get(name, {"input_variables": GREETING})
    assert _user_text(first["prompt_template"]) == expected
    assert first["llm_kwargs"]["messages"][1]["content"] == expected
    # A newer version published elsewhere stays unseen until the entry expires: the cache answers.
    publish(publisher, name, template=chat("Changed {name}", template_format))
    again = cached.templates.get(name, {"input_variables": {"name": "Bo", "topic": "x"}})
    assert again["version"] == 1
    assert again["llm_kwargs"]["messages"][1]["content"].startswith("Hi Bo, ")


@pytest.mark.anyio
async def test_async_get_renders_and_picks_by_label(pl: PromptLayer, apl: AsyncPromptLayer) -> None:
    publish(pl, "async-get", labels=["prod"])
    publish(pl, "async-get", template=chat("Later {name}"))
    got = await apl.templates.get("async-get", {"label": "prod", "input_variables": GREETING})
    assert got["version"] == 1
    assert _user_text(got["prompt_template"]) == "Hello Ada, about tea"
    latest = await apl.templates.get("async-get")
    assert latest["version"] == 2


@pytest.mark.anyio
async def test_async_get_with_a_provider_override_uses_the_new_providers_defaults(
    apl: AsyncPromptLayer,
) -> None:
    got = await apl.templates.get("openai", {"provider": "anthropic"})
    assert got["metadata"]["model"]["provider"] == "anthropic"
    assert got["llm_kwargs"]["max_tokens"] > 0


@pytest.mark.anyio
async def test_async_get_of_a_missing_template_raises_or_returns_none(
    peer_server: RunningServer, apl: AsyncPromptLayer
) -> None:
    with pytest.raises(PromptLayerNotFoundError):
        await apl.templates.get("missing")
    quiet = AsyncPromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, throw_on_error=False
    )
    assert await quiet.templates.get("missing") is None


@pytest.mark.anyio
async def test_async_all_lists_templates_with_paging_and_label(apl: AsyncPromptLayer) -> None:
    listed = await apl.templates.all(per_page=1000)
    assert {"openai", "anthropic", "google"} <= {t["prompt_name"] for t in listed}
    assert len(await apl.templates.all(page=1, per_page=1)) == 1
    assert {t["prompt_name"] for t in await apl.templates.all(label="prod")} >= {"openai"}


@pytest.mark.anyio
async def test_an_async_caching_client_renders_jinja_locally(
    pl: PromptLayer, peer_server: RunningServer
) -> None:
    publish(pl, "async-cached", template=chat("Yo {{ name }}", "jinja2"))
    cached = AsyncPromptLayer(
        api_key=peer_server.api_key, base_url=peer_server.base_url, cache_ttl_seconds=60
    )
    first = await cached.templates.get("async-cached", {"input_variables": GREETING})
    second = await cached.templates.get("async-cached", {"input_variables": {"name": "Bo"}})
    assert first["llm_kwargs"]["messages"][1]["content"] == "Yo Ada"
    assert second["llm_kwargs"]["messages"][1]["content"] == "Yo Bo"


def test_a_base_url_ending_in_a_slash_still_reaches_every_endpoint(
    peer_server: RunningServer,
) -> None:
    # The peer joins base URL and path as they are, so this client asks for "//prompt-templates".
    slashed = PromptLayer(api_key=peer_server.api_key, base_url=peer_server.base_url + "/")
    assert publish(slashed, "slashed")["version_number"] == 1
    assert slashed.templates.get("slashed", {"input_variables": GREETING})["version"] == 1
    assert "slashed" in {t["prompt_name"] for t in slashed.templates.all(per_page=1000)}
    assert isinstance(slashed.group.create(), int)


@pytest.mark.anyio
async def test_an_async_client_with_a_slash_ended_base_url_fetches_templates(
    peer_server: RunningServer,
) -> None:
    slashed = AsyncPromptLayer(api_key=peer_server.api_key, base_url=peer_server.base_url + "/")
    assert (await slashed.templates.get("openai"))["prompt_name"] == "openai"
