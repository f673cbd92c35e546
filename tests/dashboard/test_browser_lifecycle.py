"""The prompt lifecycle in a real browser (Debian's Chromium through Playwright): the playground
streaming two versions side by side, a label promoted after reading the diff, a workflow
published from the page and drawn. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from promptrun.actors.providers import TABLE
from promptrun.testing import RunningServer, running_server

from .conftest import screenshot
from .test_browser import _post as post
from .test_browser import sign_in

SYSTEM = {"role": "system", "content": [{"type": "text", "text": "You are brief."}]}
MODEL = {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A server with no provider credentials in its environment: its sandbox answers."""
    for info in TABLE.values():
        for name in (*info.key_vars, info.base_var):
            monkeypatch.delenv(name, raising=False)
    with running_server() as server:
        yield server


def publish(served: RunningServer, text: str, message: str, labels: list[str] = []) -> None:  # noqa: B006 - read only
    template = {
        "type": "chat",
        "input_variables": ["name", "topic"],
        "messages": [SYSTEM, {"role": "user", "content": [{"type": "text", "text": text}]}],
    }
    post(
        served,
        "/rest/prompt-templates",
        {"prompt_template": {"prompt_name": "greet"},
         "prompt_version": {"prompt_template": template, "metadata": MODEL,
                            "commit_message": message},
         "release_labels": labels},
    )  # fmt: skip


def test_the_playground_streams_two_versions_side_by_side_and_links_their_requests(
    page: Any, served: RunningServer
) -> None:
    publish(served, "Say hello to {name} and mention {topic}.", "first", ["prod"])
    publish(served, "Greet {name} warmly, in one line about {topic}.", "warmer")
    sign_in(page, served, "/dashboard/prompt?name=greet")
    page.click("#open-playground")
    page.wait_for_url(re.compile(r".*/dashboard/playground\?name=greet&version=2$"))
    assert "the server's sandbox at /sandbox/openai/v1" in page.inner_text("#route")
    page.fill("textarea[name='var.name']", "Ada")
    page.fill("textarea[name='var.topic']", "engines")
    page.click("#run")
    page.wait_for_selector("#results .result .logged a")
    card = page.locator("#results .result").first
    assert "Greet Ada warmly, in one line about engines." in card.locator(".answer").inner_text()
    assert re.fullmatch(r"\d+ in, \d+ out", card.locator(".tokens").inner_text())
    assert card.locator(".cost").inner_text().startswith("$")
    assert "sandbox" in card.locator(".route").inner_text()
    screenshot(page, "playground")

    page.select_option("select[name=compare]", "1")
    page.select_option("#provider", "anthropic")  # the model box suggests its default
    assert page.get_attribute("#model", "placeholder") == "claude-sonnet-4-6"
    assert "/sandbox/anthropic" in page.inner_text("#route")
    page.select_option("#provider", "")
    page.click("#run")
    page.wait_for_selector("#playground[data-done='2']")
    cards = page.locator("#results .result")
    assert cards.count() == 2
    assert "Greet Ada warmly" in cards.nth(0).locator(".answer").inner_text()
    assert "Say hello to Ada and mention engines." in cards.nth(1).locator(".answer").inner_text()
    screenshot(page, "playground-compare")

    cards.nth(1).locator(".logged a").click()
    page.wait_for_url(re.compile(r".*/dashboard/requests/\d+$"))
    assert "playground" in page.inner_text("body")  # its tag
    page.click("#open-in-playground")
    page.wait_for_url(re.compile(r".*/dashboard/playground\?request=\d+$"))
    assert page.input_value("textarea[name='var.name']") == "Ada"
    assert page.input_value("select[name=version]") == "1"


def test_promoting_a_version_shows_the_diff_first_and_can_be_rolled_back(
    page: Any, served: RunningServer
) -> None:
    publish(served, "Say hello to {name}.", "first", ["prod"])
    publish(served, "Say hello to {name} about {topic}.", "mention the topic", ["staging"])
    publish(served, "Greet {name} warmly, in one line about {topic}.", "warmer")
    sign_in(page, served, "/dashboard/prompt?name=greet")
    page.click("#versions tbody tr:first-child a.pill:has-text('set prod')")
    page.wait_for_url(re.compile(r".*/dashboard/prompt/label\?.*label=prod.*version=3.*"))
    assert "from v1 to v3" in page.inner_text("h1")
    assert "Say hello to {name}." in page.inner_text("#diff tr.removed")
    assert "Greet {name} warmly" in page.inner_text("#diff tr.added")
    screenshot(page, "label-promotion")
    page.click("#confirm-move")
    page.wait_for_url(re.compile(r".*/dashboard/prompt\?name=greet&version=3&moved=prod.*"))
    assert "Moved prod from v1 to v3." in page.inner_text("#moved")
    screenshot(page, "label-moved")
    page.click("#moved a")  # roll back: the same review, the other way
    assert "from v3 to v1" in page.inner_text("h1")
    page.click("#confirm-move")
    page.wait_for_url(re.compile(r".*moved=prod&from=3$"))
    prod = post(served, "/prompt-templates/greet", {"label": "prod"})
    assert prod["version"] == 1

    page.click("#diff-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/prompt/diff.*"))
    screenshot(page, "version-diff")
    page.click("#compare-in-playground")
    page.wait_for_url(re.compile(r".*/dashboard/playground\?.*compare=.*"))
    assert page.input_value("select[name=compare]") != ""


FLOW = {
    "input_variables": ["name", "topic"],
    "nodes": [
        {"name": "draft", "type": "prompt_template",
         "configuration": {"prompt_name": "greet", "label": "prod"},
         "inputs": {"name": "name", "topic": "topic"}},
        {"name": "words", "type": "code",
         "configuration": {"code": "return len(draft.split())"}, "inputs": {"draft": "draft"}},
        {"name": "check", "type": "conditional",
         "configuration": {"expression": "words > 3", "if_true": ["summary"],
                           "if_false": ["too_short"]},
         "inputs": {"words": "words"}},
        {"name": "summary", "type": "code",
         "configuration": {"code": "return draft.upper()"}, "inputs": {"draft": "draft"},
         "is_output_node": True},
        {"name": "too_short", "type": "value", "configuration": {"value": "too short"},
         "is_output_node": True},
        {"name": "audit", "type": "code", "configuration": {"code": "return 1 / 0"},
         "dependencies": ["draft"]},
    ],
}  # fmt: skip


def test_a_workflow_pasted_into_the_page_is_published_and_drawn(
    page: Any, served: RunningServer
) -> None:
    publish(served, "Say hello to {name} about {topic}.", "first", ["prod"])
    sign_in(page, served, "/dashboard/workflows")
    page.click("#publish-workflow")
    page.fill("input[name=name]", "triage")
    page.set_input_files(  # picking the file fills the box with its JSON
        "#definition-file",
        {"name": "triage.json", "mimeType": "application/json",
         "buffer": json.dumps(FLOW, indent=2).encode()},
    )  # fmt: skip
    page.wait_for_selector("#file-status:has-text('Read triage.json')")
    assert json.loads(page.input_value("textarea[name=definition]")) == FLOW
    page.fill("input[name=release_labels]", "prod")
    screenshot(page, "workflow-publish")
    page.click("#workflow-publish-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/workflow\?name=triage.*"))
    assert page.locator("#workflow-graph g.node").count() == 6
    assert page.locator("#workflow-graph g.node.output").count() == 2
    assert page.locator("#workflow-graph path.edge").count() == 6
    screenshot(page, "workflow-graph")

    started = post(
        served, "/workflows/triage/run", {"input_variables": {"name": "Ada", "topic": "tea"}}
    )
    execution = started["workflow_version_execution_id"]
    page.goto(f"{served.base_url}/dashboard/workflows/executions/{execution}")
    for _ in range(100):  # the run finishes in the background
        if page.locator("#workflow-graph g.node.state-SUCCESS").count() >= 4:
            break
        page.wait_for_timeout(50)
        page.reload()
    graph = page.locator("#workflow-graph")
    assert graph.locator("g.node.state-SUCCESS[data-node=summary]").count() == 1
    assert graph.locator("g.node.state-SKIPPED[data-node=too_short]").count() == 1
    assert graph.locator("g.node.state-FAILED[data-node=audit]").count() == 1
    screenshot(page, "workflow-execution-graph")
