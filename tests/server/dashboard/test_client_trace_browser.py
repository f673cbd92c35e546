"""promptrun's own client, tracing on, on the trace page in a real browser: a traced handler
running two runs at once and a local workflow, with a run's logged request linked both ways.
Saves artifacts/screenshots/client-trace.png and client-trace-request.png."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from promptrun import AsyncPromptLayer
from promptrun.testing import RunningServer

from ..._clients import example
from ...tracing.test_client_traces import VARS, WORKFLOW
from .conftest import screenshot
from .test_browser import sign_in
from .test_trace_browser import TEMPLATE, served

__all__ = ["served"]  # the fixture


async def traced_flow(served: RunningServer, spool: Path) -> str:
    async with AsyncPromptLayer(
        api_key=served.api_key, base_url=served.base_url, enable_tracing=True, spool_dir=spool
    ) as pl:
        await pl.templates.publish(TEMPLATE)
        await pl.templates.publish(example("greet"))

        @pl.traceable(name="answer ticket", attributes={"ticket.channel": "email"})
        async def answer(ticket: str) -> str:
            first, _ = await asyncio.gather(
                pl.run("support-answer", input_variables={"ticket": ticket}),
                pl.run("support-answer", input_variables={"ticket": ticket + " (again)"}),
            )
            await pl.run_workflow("triage", VARS, execution="local",
                                  definition=WORKFLOW)  # fmt: skip
            return str(first["request_id"])

        request_id = await answer("I was charged twice for my tea subscription.")
        assert await pl.flush(30)
        return request_id


def test_our_clients_trace_shows_runs_workflow_nodes_and_the_linked_request(
    page: Any, served: RunningServer, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
        pool.submit(asyncio.run, traced_flow(served, tmp_path / "spool")).result()
    sign_in(page, served, "/dashboard/traces?name=answer%20ticket")
    row = page.locator("#traces tbody tr")
    assert row.count() == 1
    row.locator("td").first.click()
    page.wait_for_url(re.compile(r".*/dashboard/traces/[0-9a-f]{32}$"))
    names = page.locator("svg.waterfall text.name").all_text_contents()
    assert names[0] == "answer ticket"
    assert names.count("PromptLayer Run") == 2
    assert "Workflow triage" in names and "Workflow node greeting" in names
    assert "chat gpt-4o-mini" in names
    run_row = page.locator("svg.waterfall a", has_text="PromptLayer Run").first
    assert run_row.locator("text.linked").count() == 1
    screenshot(page, "client-trace")
    run_row.click()
    page.wait_for_url(re.compile(r".*\?span=[0-9a-f]{16}#span-[0-9a-f]{16}$"))
    details = page.locator("details.span-detail[open]")
    details.locator("a.request-link").click()
    page.wait_for_url(re.compile(r".*/dashboard/requests/\d+$"))
    assert "gpt-4o-mini" in page.inner_text("main")
    screenshot(page, "client-trace-request")
    page.click("#trace-link")
    page.wait_for_url(re.compile(r".*/dashboard/traces/[0-9a-f]{32}\?span=.*"))
