"""The prompt lifecycle in the dashboard over HTTP: label moves with a diff to confirm, the
playground (streamed and without a script), version comparison, workflow publishing and
the workflow graph."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.pipeline import TABLE
from promptrun.server.app import ServerConfig, create_app
from tests._records import comparable

from ._dash import KEY, OTHER_KEY, Visitor, chat

pytestmark = pytest.mark.anyio

GREET = {
    "type": "chat",
    "input_variables": ["name"],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello to {name}."}]}],
}
MODEL = {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}


@pytest.fixture
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider credentials or base URLs: the server's own sandbox answers."""
    for info in TABLE.values():
        for name in (*info.key_vars, info.base_var):
            monkeypatch.delenv(name, raising=False)


@contextlib.asynccontextmanager
async def _visitor(db_path: Path, native_transport: bool = True) -> AsyncIterator[Visitor]:
    """A signed-in visitor on a server that runs its sandbox providers."""
    config = ServerConfig(
        db_path=db_path,
        api_keys=(KEY, f"other:{OTHER_KEY}"),
        generate_key=False,
        sandbox=True,
        native_transport=native_transport,
    )
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        visitor = Visitor(client)
        status, _ = await visitor.sign_in()
        assert status == 200
        yield visitor


@pytest.fixture
async def playground(tmp_path: Path, no_provider_env: None) -> AsyncIterator[Visitor]:
    async with _visitor(tmp_path / "promptrun.db") as visitor:
        yield visitor


@pytest.fixture
async def playground_sdk(tmp_path: Path, no_provider_env: None) -> AsyncIterator[Visitor]:
    """As ``playground``, on a server started with ``--no-native-transport``."""
    async with _visitor(tmp_path / "sdk.db", native_transport=False) as visitor:
        yield visitor


async def publish(visitor: Visitor, text: str, **extra: Any) -> Any:
    template = {
        **GREET,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }
    return await visitor.api(
        "/rest/prompt-templates",
        {"prompt_template": {"prompt_name": "greet"},
         "prompt_version": {"prompt_template": template, "metadata": MODEL}, **extra},
    )  # fmt: skip


async def api_get(visitor: Visitor, path: str) -> Any:
    async with visitor.client.get(path, headers={"X-API-KEY": KEY}) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def events(visitor: Visitor, form: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """POST the playground form asking for server-sent events; the events in order."""
    async with visitor.client.post(
        "/dashboard/playground/run",
        data={**form, "csrf_token": visitor.csrf},
        headers={"Accept": "text/event-stream"},
    ) as answer:
        assert answer.status == 200, await answer.text()
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        text = await answer.text()
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


# -- release labels ------------------------------------------------------------------------


async def test_promoting_a_version_shows_the_diff_from_where_the_label_is_then_moves_it(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}", release_labels=["prod"])
    await signed_in.publish("greet", "Hello {name}")
    await signed_in.publish("greet", "Hey {name}")
    _, page = await signed_in.get("/dashboard/prompt?name=greet&version=3")
    link = "/dashboard/prompt/label?name=greet&amp;label=prod&amp;version=3"
    assert f'href="{link}"' in page  # "set prod" on version 3's row
    status, confirm = await signed_in.get(link.replace("&amp;", "&"))
    assert status == 200
    assert 'Move <span class="pill label">prod</span> of greet from v1 to v3?' in confirm
    removed = re.findall(r'<tr class="removed">.*?</tr>', confirm, re.S)
    added = re.findall(r'<tr class="added">.*?</tr>', confirm, re.S)
    assert any("Hi {name}" in row for row in removed)
    assert any("Hey {name}" in row for row in added)
    status, page = await signed_in.post(
        "/dashboard/prompt/label", {"name": "greet", "label": "prod", "version": "3", "from": "1"}
    )
    assert status == 200
    assert "Moved <b>prod</b> from v1 to v3." in page
    assert "Roll back to v1" in page
    fetched = await signed_in.api("/prompt-templates/greet", {"label": "prod"})
    assert fetched["version"] == 3
    listed = await signed_in.api("/prompt-templates/greet", {})
    assert listed["version"] == 3  # nothing published


async def test_a_move_reviewed_before_someone_else_moved_the_label_is_refused(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}", release_labels=["prod"])
    await signed_in.publish("greet", "Hello {name}")
    await signed_in.api("/prompts/greet/label", {"name": "prod", "prompt_version_number": 2})
    status, page = await signed_in.post(
        "/dashboard/prompt/label", {"name": "greet", "label": "prod", "version": "1", "from": "1"}
    )
    assert status == 409
    assert "prod is on v2 now" in page
    assert (await signed_in.api("/prompt-templates/greet", {"label": "prod"}))["version"] == 2


async def test_a_new_label_is_reviewed_as_the_whole_version_and_put_on_it(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}")
    status, confirm = await signed_in.get(
        "/dashboard/prompt/label?name=greet&label=canary&version=1"
    )
    assert status == 200
    assert 'Put <span class="pill label">canary</span> on greet v1?' in confirm
    assert "is a new label" in confirm
    status, page = await signed_in.post(
        "/dashboard/prompt/label", {"name": "greet", "label": "canary", "version": "1", "from": ""}
    )
    assert (status, "Moved <b>canary</b> to v1." in page) == (200, True)


async def test_moving_a_label_needs_the_forms_token_and_a_real_version(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}", release_labels=["prod"])
    await signed_in.publish("greet", "Hello {name}")
    status, _ = await signed_in.post(
        "/dashboard/prompt/label",
        {"name": "greet", "label": "prod", "version": "2", "from": "1"},
        csrf=False,
    )
    assert status == 403
    status, page = await signed_in.get("/dashboard/prompt/label?name=greet&label=prod&version=7")
    assert status == 404
    assert "has no version 7" in page
    status, _ = await signed_in.get("/dashboard/prompt/label?name=greet&label=%20&version=1")
    assert status == 400
    assert (await signed_in.api("/prompt-templates/greet", {"label": "prod"}))["version"] == 1


async def test_publishing_unchanged_content_from_the_dashboard_says_so(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}")
    form = {
        "name": "greet",
        "prompt_template": json.dumps(chat("Hi {name}")),
        "metadata": json.dumps({"model": {"provider": "openai", "name": "gpt-4o-mini"}}),
        "commit_message": "",
        "release_labels": "",
    }
    status, page = await signed_in.post("/dashboard/publish", form)
    assert status == 200
    assert "Nothing to publish: version 1 already holds this template" in page


# -- the playground -------------------------------------------------------------------------


async def test_the_playground_streams_the_answer_then_tokens_cost_and_the_logged_request(
    playground: Visitor,
) -> None:
    await publish(playground, "Say hello to {name}.")
    status, page = await playground.get("/dashboard/playground?name=greet&version=1")
    assert status == 200
    assert 'name="var.name"' in page
    assert "the server&#39;s sandbox at /sandbox/openai/v1" in page  # says which is used
    found = await events(playground, {"name": "greet", "version": "1", "var.name": "Ada"})
    kinds = [kind for kind, _ in found]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("text") >= 2  # arrived in pieces
    start, done = found[0][1], found[-1][1]
    assert (start["provider"], start["model"]) == ("openai", "gpt-4o-mini")
    assert "sandbox" in start["route"]
    streamed = "".join(data["text"] for kind, data in found if kind == "text")
    assert streamed == done["text"]
    assert "Say hello to Ada." in done["text"]
    assert done["input_tokens"] > 0 and done["output_tokens"] > 0
    assert done["cost"].startswith("$")
    assert done["request_url"] == f"/dashboard/requests/{done['request_id']}"
    logged = await api_get(playground, f"/promptrun/v1/requests/{done['request_id']}")
    assert (logged["prompt_name"], logged["prompt_version"]) == ("greet", 1)
    assert logged["tags"] == ["playground"]
    assert logged["input_variables"] == {"name": "Ada"}


async def test_the_playground_calls_the_sandbox_natively_and_logs_what_the_sdk_path_logs(
    playground: Visitor, playground_sdk: Visitor
) -> None:
    seen = []
    for visitor in (playground, playground_sdk):
        await publish(visitor, "Say hello to {name}.")
        await visitor.get("/dashboard/playground?name=greet")
        found = await events(visitor, {"name": "greet", "version": "1", "var.name": "Ada"})
        assert found[-1][0] == "done", found
        control = await api_get(visitor, "/sandbox/_control")
        agent = control["stats"]["recent"][-1]["user_agent"]
        logged = await api_get(visitor, f"/promptrun/v1/requests/{found[-1][1]['request_id']}")
        seen.append((agent, comparable(logged)))
    (native_agent, native_logged), (sdk_agent, sdk_logged) = seen
    assert sdk_agent.startswith("AsyncOpenAI/Python")  # the SDK's telemetry
    assert native_agent is None  # the native transport sends none
    assert native_logged == sdk_logged


async def test_the_playground_runs_another_provider_and_model_when_asked(
    playground: Visitor,
) -> None:
    await publish(playground, "Say hello to {name}.")
    await playground.get("/dashboard/playground?name=greet")
    found = await events(
        playground,
        {"name": "greet", "version": "1", "var.name": "Bo", "provider": "anthropic",
         "model": "claude-haiku-4-5"},
    )  # fmt: skip
    start, done = found[0][1], found[-1][1]
    assert (start["provider"], start["model"]) == ("anthropic", "claude-haiku-4-5")
    assert "/sandbox/anthropic" in start["route"]
    assert found[-1][0] == "done" and "Bo" in done["text"]


async def test_without_a_script_the_form_runs_both_versions_and_shows_the_results(
    playground: Visitor,
) -> None:
    await publish(playground, "Say hello to {name}.")
    await publish(playground, "Say goodbye to {name}.")
    await playground.get("/dashboard/playground?name=greet&version=2&compare=1")
    status, page = await playground.post(
        "/dashboard/playground/run",
        {"name": "greet", "version": "2", "compare": "1", "var.name": "Cy"},
    )
    assert status == 200
    cards = re.findall(
        r'<section class="card result[^"]*" data-version="(\d)">(.*?)</section>', page, re.S
    )
    assert [number for number, _ in cards] == ["2", "1"]
    assert "Say goodbye to Cy." in cards[0][1] and "Say hello to Cy." in cards[1][1]
    assert all("/dashboard/requests/" in card for _, card in cards)


async def test_a_logged_request_opens_in_the_playground_with_its_variables(
    playground: Visitor,
) -> None:
    await publish(playground, "Say hello to {name} about {topic}.")
    await playground.get("/dashboard/playground?name=greet")
    done = (await events(playground, {"name": "greet", "version": "1", "var.name": "Ada",
                                      "json.topic": '["engines", 2]'}))[-1][1]  # fmt: skip
    _, request_page = await playground.get(done["request_url"])
    link = f"/dashboard/playground?request={done['request_id']}"
    assert f'href="{link}"' in request_page
    status, page = await playground.get(link)
    assert status == 200
    assert re.search(r'name="var.name"[^>]*>Ada</textarea>', page)
    assert 'name="json.topic"' in page  # not a string: kept as JSON
    assert "&#34;engines&#34;" in page


async def test_playground_mistakes_are_said_where_the_answer_would_be(
    playground: Visitor,
) -> None:
    await publish(playground, "Say hello to {name}.")
    await playground.get("/dashboard/playground?name=greet")
    bad_json = await events(playground, {"name": "greet", "version": "1", "json.name": "{"})
    assert bad_json == [("error", {"message": bad_json[0][1]["message"], "request_id": None})]
    assert "The variable name is not valid JSON" in bad_json[0][1]["message"]
    bad_provider = await events(playground, {"name": "greet", "version": "1", "provider": "nope"})
    assert bad_provider[0][0] == "error" and "nope" in bad_provider[0][1]["message"]
    status, page = await playground.get("/dashboard/playground?name=missing")
    assert status == 404
    logged = await playground.api("/log-request", {
        "provider": "openai", "model": "gpt-4o-mini", "input": chat("hi"),
        "output": chat("yo", role="assistant"), "request_start_time": 1.0e9,
        "request_end_time": 1.0e9 + 1,
    })  # fmt: skip
    status, page = await playground.get(f"/dashboard/playground?request={logged['id']}")
    assert status == 400
    assert "was not made from a registry template" in page


async def test_a_failed_provider_call_is_logged_and_linked(
    playground: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A base URL in the environment with no key: the server's environment decides, and fails.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    await publish(playground, "Say hello to {name}.")
    await playground.get("/dashboard/playground?name=greet")
    found = await events(playground, {"name": "greet", "version": "1", "var.name": "Ada"})
    assert found[0][0] == "start"
    assert "the server's environment (OPENAI_BASE_URL)" in found[0][1]["route"]
    kind, data = found[-1]
    assert kind == "error"
    assert "OPENAI_API_KEY" in data["message"]
    assert data["status"] == "ERROR"
    assert data["request_url"] == f"/dashboard/requests/{data['request_id']}"


async def test_the_playground_needs_the_forms_token(playground: Visitor) -> None:
    await publish(playground, "Say hello to {name}.")
    status, _ = await playground.post(
        "/dashboard/playground/run", {"name": "greet", "version": "1"}, csrf=False
    )
    assert status == 403
    items = await api_get(playground, "/promptrun/v1/requests")
    assert items["total"] == 0


async def test_the_diff_page_offers_to_run_both_versions_in_the_playground(
    signed_in: Visitor,
) -> None:
    await signed_in.publish("greet", "Hi {name}")
    await signed_in.publish("greet", "Hello {name}")
    _, page = await signed_in.get("/dashboard/prompt/diff?name=greet&a=1&b=2")
    assert 'href="/dashboard/playground?name=greet&amp;version=2&amp;compare=1"' in page


# -- workflows ----------------------------------------------------------------------------

FLOW = {
    "input_variables": ["text"],
    "nodes": [
        {"name": "size", "type": "code", "configuration": {"code": "return len(text)"},
         "inputs": {"text": "text"}},
        {"name": "check", "type": "conditional",
         "configuration": {"expression": "size > 3", "if_true": ["long"], "if_false": ["short"]},
         "inputs": {"size": "size"}},
        {"name": "long", "type": "value", "configuration": {"value": "long"},
         "is_output_node": True},
        {"name": "short", "type": "value", "configuration": {"value": "short"},
         "is_output_node": True},
    ],
}  # fmt: skip


async def test_a_workflow_published_from_the_dashboard_is_drawn_as_a_graph(
    signed_in: Visitor,
) -> None:
    status, form = await signed_in.get("/dashboard/workflows/publish")
    assert status == 200 and 'id="definition-file"' in form
    status, page = await signed_in.post(
        "/dashboard/workflows/publish",
        {"name": "triage", "definition": json.dumps(FLOW), "commit_message": "first",
         "release_labels": "prod"},
    )  # fmt: skip
    assert status == 200
    assert "Published version 1." in page
    svg = re.search(r'<svg class="graph".*?</svg>', page, re.S)
    assert svg is not None
    nodes = re.findall(r'<g class="node([^"]*)" data-node="(\w+)"', svg.group(0))
    assert {name for _, name in nodes} == {"size", "check", "long", "short"}
    assert {name for classes, name in nodes if "output" in classes} == {"long", "short"}
    edges = set(re.findall(r'data-source="(\w+)" data-target="(\w+)"', svg.group(0)))
    assert edges == {("size", "check"), ("check", "long"), ("check", "short")}
    assert ">true</text>" in svg.group(0) and ">false</text>" in svg.group(0)
    stored = await signed_in.client.get("/workflows/triage", headers={"X-API-KEY": KEY})
    assert (await stored.json())["workflow"]["release_labels"] == ["prod"]


async def test_a_multipart_post_is_refused_with_a_reason_not_a_crash(
    signed_in: Visitor,
) -> None:
    data = aiohttp.FormData()
    data.add_field("csrf_token", signed_in.csrf)
    data.add_field("file", b"{}", filename="x.json", content_type="application/json")
    async with signed_in.client.post("/dashboard/workflows/publish", data=data) as answer:
        assert answer.status == 400
        assert "This form could not be read" in await answer.text()


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ('{"nodes": [', "request body is not valid JSON"),
        (json.dumps({"nodes": [{"name": "a", "type": "llm"}]}), "node &#39;a&#39; has unknown type &#39;llm&#39;"),
        (json.dumps({"nodes": [
            {"name": "a", "type": "code", "configuration": {"code": "return b"}, "inputs": {"b": "b"}},
            {"name": "b", "type": "code", "configuration": {"code": "return a"}, "inputs": {"a": "a"}},
        ]}), "the workflow has a cycle"),
        (json.dumps({"definition": FLOW, "extra": 1}), "unknown keys in the publish body"),
    ],
)  # fmt: skip
async def test_a_workflow_that_cannot_run_is_refused_with_the_apis_words(
    signed_in: Visitor, definition: str, message: str
) -> None:
    await signed_in.get("/dashboard/workflows/publish")
    status, page = await signed_in.post(
        "/dashboard/workflows/publish",
        {"name": "bad", "definition": definition, "commit_message": "", "release_labels": ""},
    )
    assert status == 400
    assert message in page
    assert "Publish a new version of bad" in page  # the form, as it was typed
    stored = await signed_in.client.get("/workflows/bad", headers={"X-API-KEY": KEY})
    assert stored.status == 404


async def test_the_api_refuses_the_same_definitions_with_the_same_words(
    signed_in: Visitor,
) -> None:
    async with signed_in.client.post(
        "/rest/workflows",
        json={"workflow_name": "bad", "definition": {"nodes": [{"name": "a", "type": "llm"}]}},
        headers={"X-API-KEY": KEY},
    ) as answer:
        assert answer.status == 400
        assert "node 'a' has unknown type 'llm'" in (await answer.json())["message"]


async def test_a_version_without_a_model_runs_once_a_provider_is_picked(
    playground: Visitor,
) -> None:
    await playground.api(
        "/rest/prompt-templates",
        {"prompt_template": {"prompt_name": "bare"},
         "prompt_version": {"prompt_template": GREET, "metadata": {}}},
    )  # fmt: skip
    await playground.get("/dashboard/playground?name=bare")
    refused = await events(playground, {"name": "bare", "version": "1", "var.name": "Ada"})
    assert refused[0][0] == "error"
    assert (
        "has no metadata.model: publish it with a model, or pick a provider"
        in (refused[0][1]["message"])
    )
    ran = await events(
        playground, {"name": "bare", "version": "1", "var.name": "Ada", "provider": "openai"}
    )
    assert ran[-1][0] == "done", ran
    assert ran[0][1]["model"] == "gpt-4o-mini"  # the provider's default


async def test_a_compare_version_that_is_not_a_number_is_a_400_that_says_so(
    playground: Visitor,
) -> None:
    await publish(playground, "Say hello to {name}.")
    status, page = await playground.get("/dashboard/playground?name=greet&compare=%C2%B2")
    assert status == 400
    assert "is not a number" in page
