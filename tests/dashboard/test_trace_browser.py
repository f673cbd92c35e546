"""The PromptLayer SDK's traced functions on the trace page, in a real browser (Debian's
Chromium through Playwright), with the run's logged request linked both ways. Saves
artifacts/screenshots/traces.png, trace.png and trace-request.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from promptlayer import PromptLayer

from promptrun.testing import RunningServer, running_server

from ..compat.conftest import _close, _drain_peer_clients
from .conftest import screenshot
from .test_browser import sign_in

TEMPLATE = {
    "prompt_name": "support-answer",
    "prompt_template": {
        "type": "chat",
        "input_variables": ["ticket"],
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "You answer support tickets."}],
            },
            {"role": "user", "content": [{"type": "text", "text": "{ticket}"}]},
        ],
    },
    "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}},
    "release_labels": ["prod"],
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    with running_server() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox")
        monkeypatch.setenv("OPENAI_BASE_URL", server.sandbox_url("openai"))
        for client in _drain_peer_clients():
            _close(client)
        yield server
        for client in _drain_peer_clients():
            _close(client)


def run_traced_support_flow(served: RunningServer) -> int:
    """The peer SDK, tracing on: a traced handler calling two traced steps, one of which runs
    a registry prompt. Returns the logged request's id."""
    pl = PromptLayer(api_key=served.api_key, base_url=served.base_url, enable_tracing=True)
    pl.templates.publish(TEMPLATE)

    @pl.traceable(attributes={"ticket.channel": "email"})
    def classify(ticket: str) -> str:
        return "billing"

    @pl.traceable()
    def draft_reply(ticket: str, topic: str) -> dict[str, Any]:
        return pl.run("support-answer", input_variables={"ticket": ticket}, tags=[topic])  # type: ignore[no-any-return]

    @pl.traceable(name="handle ticket")
    def handle(ticket: str) -> dict[str, Any]:
        return draft_reply(ticket, classify(ticket))

    result = handle("I was charged twice for my tea subscription.")
    provider = pl.tracer_provider
    assert provider is not None and provider.force_flush(10_000)
    provider.shutdown()
    return int(result["request_id"])


def test_the_peers_traced_functions_show_on_the_trace_page_with_the_run_request_linked(
    page: Any, served: RunningServer
) -> None:
    request_id = run_traced_support_flow(served)

    sign_in(page, served, "/dashboard/traces")
    row = page.locator("#traces tbody tr")
    assert row.count() == 1
    assert "handle ticket" in row.inner_text()
    screenshot(page, "traces")
    row.locator("td").first.click()  # the whole row opens the trace
    page.wait_for_url(re.compile(r".*/dashboard/traces/[0-9a-f]{32}$"))
    names = page.locator("svg.waterfall text.name").all_text_contents()
    assert names[:3] == ["handle ticket", "classify", "draft_reply"]
    assert "PromptLayer Run" in names
    run_row = page.locator("svg.waterfall a", has_text="PromptLayer Run")
    assert run_row.locator("text.linked").count() == 1  # it has a logged request
    screenshot(page, "trace")

    run_row.click()  # opens that span's details
    page.wait_for_url(re.compile(r".*\?span=[0-9a-f]{16}#span-[0-9a-f]{16}$"))
    details = page.locator("details.span-detail[open]")
    assert "PromptLayer Run" in details.locator("> summary").inner_text()
    assert "promptlayer.prompt.name" in details.inner_text()
    details.locator("a.request-link").click()
    page.wait_for_url(re.compile(rf".*/dashboard/requests/{request_id}$"))
    assert "gpt-4o-mini" in page.inner_text("main")
    screenshot(page, "trace-request")
    page.click("#trace-link")  # and back from the request to its trace
    page.wait_for_url(re.compile(r".*/dashboard/traces/[0-9a-f]{32}\?span=.*"))
    assert "PromptLayer Run" in page.locator("details.span-detail[open] > summary").inner_text()
