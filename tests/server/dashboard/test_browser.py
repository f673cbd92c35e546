"""The dashboard in a real browser (Debian's Chromium, headless, through Playwright).

Each flow signs in with an API key, as a person would, against a server on loopback, and saves
a screenshot of each main page under artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptrun import PromptLayer
from promptrun.testing import RunningServer, running_server

from .conftest import screenshot

GREETING = {
    "prompt_name": "greet",
    "commit_message": "first greeting",
    "release_labels": ["prod"],
    "prompt_template": {
        "type": "chat",
        "input_variables": ["name"],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You are brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "Say hello to {name}."}]},
        ],
    },
    "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}},
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    with running_server() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox")
        monkeypatch.setenv("OPENAI_BASE_URL", server.sandbox_url("openai"))
        yield server


@pytest.fixture
def client(served: RunningServer, tmp_path: Path) -> Iterator[PromptLayer]:
    with PromptLayer(
        api_key=served.api_key, base_url=served.base_url, spool_dir=tmp_path / "spool"
    ) as pl:
        yield pl


def sign_in(page: Any, served: RunningServer, path: str = "/dashboard/") -> None:
    page.goto(served.base_url + path)
    assert "Sign in" in page.title()
    page.fill("#api_key", served.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(served.base_url + path)


def test_a_request_logged_moments_ago_can_be_found_filtered_and_opened(
    page: Any, served: RunningServer, client: PromptLayer
) -> None:
    client.templates.publish(GREETING)
    streamed = list(client.run("greet", input_variables={"name": "Ada"}, stream=True))
    answer = streamed[-1]["prompt_blueprint"]["prompt_template"]["messages"][-1]
    streamed_text = answer["content"][0]["text"]
    now = time.time()
    client.log_request(
        provider="anthropic",
        model="claude-haiku-4-5",
        input={
            "type": "chat",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Name a <b>bold</b> river"}]}
            ],
        },
        output={
            "type": "chat",
            "messages": [
                {"role": "assistant", "content": [{"type": "text", "text": "The Danube."}]}
            ],
        },
        request_start_time=now - 0.4,
        request_end_time=now,
        tags=["browser-test"],
        input_tokens=120,
        output_tokens=8,
    )
    assert client.flush(timeout=10)

    page.goto(served.base_url + "/dashboard/requests")
    assert "Sign in" in page.title()
    screenshot(page, "signin")
    page.fill("#api_key", served.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/requests$"))
    assert page.locator("#requests tbody tr").count() == 2
    screenshot(page, "requests")

    page.select_option("select[name=tag]", "browser-test")  # applies on change
    page.wait_for_url(re.compile(r".*tag=browser-test.*"))
    assert page.locator("#requests tbody tr").count() == 1
    assert "claude-haiku-4-5" in page.inner_text("#requests")

    page.fill("input[name=q]", "Danube")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*q=Danube.*"))
    assert page.locator("#requests tbody tr").count() == 1

    page.click("#requests tbody tr td:nth-child(2)")  # the whole row opens it
    page.wait_for_url(re.compile(r".*/dashboard/requests/\d+$"))
    assert "The Danube." in page.inner_text("#response")
    assert "Name a <b>bold</b> river" in page.inner_text("#sent")  # shown as text
    assert page.locator("#sent b").count() == 0
    screenshot(page, "request")

    page.goto(served.base_url + "/dashboard/requests?provider=openai")
    page.click("#requests tbody tr a")
    assert page.inner_text("#response").strip().endswith(streamed_text.strip())
    page.click("#template-link")
    page.wait_for_url(re.compile(r".*/dashboard/prompt\?name=greet.*"))
    assert "Say hello to {name}." in page.inner_text("#template-messages")
    screenshot(page, "request-streamed-template")


def test_two_versions_can_be_diffed_and_a_third_published_from_the_page(
    page: Any, served: RunningServer, client: PromptLayer
) -> None:
    client.templates.publish(GREETING)
    second = dict(GREETING, commit_message="warmer", release_labels=["staging"])
    second["prompt_template"] = {
        **GREETING["prompt_template"],
        "messages": [
            GREETING["prompt_template"]["messages"][0],
            {"role": "user", "content": [{"type": "text", "text": "Warmly greet {name}."}]},
        ],
    }
    client.templates.publish(second)
    sign_in(page, served, "/dashboard/prompts")
    assert "greet" in page.inner_text("#templates")
    screenshot(page, "prompts")

    page.click("#templates a")
    page.wait_for_url(re.compile(r".*/dashboard/prompt\?name=greet$"))
    assert page.locator("#versions tbody tr").count() == 2
    screenshot(page, "prompt")
    page.click("#diff-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/prompt/diff.*"))
    assert "Say hello to {name}." in page.inner_text("#diff tr.removed")
    assert "Warmly greet {name}." in page.inner_text("#diff tr.added")
    screenshot(page, "diff")

    page.click("text=back to the template")
    page.click("text=Publish a new version")
    page.wait_for_url(re.compile(r".*/dashboard/publish\?name=greet$"))
    template = page.input_value("textarea[name=prompt_template]")
    page.fill(
        "textarea[name=prompt_template]", template.replace("Warmly greet", "Cheerfully greet")
    )
    page.fill("input[name=commit_message]", "cheerful now")
    page.fill("input[name=release_labels]", "prod")
    screenshot(page, "publish")
    page.click("#publish-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/prompt\?name=greet&version=3.*"))
    assert "Published version 3." in page.inner_text("[role=status]")
    assert "cheerful now" in page.inner_text("#versions")
    assert client.templates.get("greet", {"label": "prod"})["version"] == 3


def test_the_overview_prices_and_workflows_pages_render_and_sign_out_works(
    page: Any, served: RunningServer, client: PromptLayer
) -> None:
    now = time.time()
    for i, (model, status) in enumerate(
        [("gpt-4o", "SUCCESS"), ("gpt-4o-mini", "SUCCESS"), ("homegrown-7b", "ERROR")] * 3
    ):
        client.log_request(
            provider="openai", model=model,
            input={"type": "chat", "messages": []}, output={"type": "chat", "messages": []},
            request_start_time=now - 3000 * i - 1.5 * (i % 3 + 1), request_end_time=now - 3000 * i,
            input_tokens=2000, output_tokens=400, status=status,
        )  # fmt: skip
    assert client.flush(timeout=10)
    sign_in(page, served)
    assert page.locator("svg.chart rect.bar").count() >= 3
    assert "homegrown-7b" in page.inner_text("body")  # named as having no price
    screenshot(page, "overview")

    page.click("text=Prices")
    page.click("button[data-price-model='gpt-4o']")  # copies the row into the form
    assert page.input_value("#price-form input[name=model]") == "gpt-4o"
    assert page.input_value("#price-form input[name=output_per_million]") == "10.0"
    page.fill("#price-form input[name=model]", "homegrown-7b")
    page.fill("#price-form input[name=input_per_million]", "1.5")
    page.fill("#price-form input[name=output_per_million]", "3")
    page.click("#price-form button[type=submit]")
    assert "Saved the price of homegrown-7b" in page.inner_text("[role=status]")
    assert "homegrown-7b" in page.inner_text("#prices")
    screenshot(page, "prices")

    page.click("nav >> text=Workflows")
    assert page.locator("h1").inner_text() == "Workflows"
    assert "No workflows in this workspace yet" in page.inner_text("#no-workflows")

    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/dashboard/signin.*"))
    page.goto(served.base_url + "/dashboard/requests")
    assert "Sign in" in page.title()


def _post(served: RunningServer, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        served.base_url + path,
        data=json.dumps(body).encode(),
        headers={"X-API-KEY": served.api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def test_a_workflow_execution_opens_with_its_nodes(page: Any, served: RunningServer) -> None:
    from .test_workflow_pages import SHOUTER

    _post(served, "/rest/workflows", {"workflow_name": "shouter", "definition": SHOUTER})
    started = _post(served, "/workflows/shouter/run", {"input_variables": {"who": "ada"}})
    execution_id = started["workflow_version_execution_id"]
    sign_in(page, served, "/dashboard/workflows")
    page.wait_for_selector("#workflow-definitions")
    for _ in range(100):  # the run finishes in the background
        if "RUNNING" not in page.inner_text("#workflow-executions"):
            break
        time.sleep(0.05)
        page.reload()
    screenshot(page, "workflows")
    page.click(f"#workflow-executions a[href$='/executions/{execution_id}']")
    page.wait_for_url(re.compile(rf".*/dashboard/workflows/executions/{execution_id}$"))
    nodes = page.inner_text("#execution-nodes")
    assert "HELLO ADA" in nodes
    assert "division by zero" in nodes
    assert page.locator("svg.chart rect.span").count() == 3
    screenshot(page, "workflow-execution")
    page.click("text=shouter version 1")
    assert "text ← greeting" in page.inner_text("#workflow-nodes")
    screenshot(page, "workflow")
