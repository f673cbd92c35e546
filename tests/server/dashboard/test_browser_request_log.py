"""The request log in a real browser (Debian's Chromium through Playwright): on a 390 px phone
screen the list fits the width and its rows read as cards; the sort headers and the pager
work with the mouse. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptrun import PromptLayer
from promptrun.testing import RunningServer, running_server

from .conftest import screenshot

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def served() -> Iterator[RunningServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def logged(served: RunningServer, tmp_path: Path) -> RunningServer:
    """Sixty requests over a few models, tags, latencies and scores."""
    with PromptLayer(
        api_key=served.api_key, base_url=served.base_url, spool_dir=tmp_path / "spool"
    ) as client:
        now = time.time()
        for n in range(60):
            client.log_request(
                provider="openai" if n % 3 else "anthropic",
                model=("gpt-4o-mini", "claude-haiku-4-5", "gpt-4o")[n % 3],
                input={
                    "type": "chat",
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "text", "text": f"Summarise report {n}, briefly"}],
                        }
                    ],
                },
                output={
                    "type": "chat",
                    "messages": [
                        {
                            "role": "assistant",
                            "content": [{"type": "text", "text": f"Report {n} says sales rose."}],
                        }
                    ],
                },
                request_start_time=now - 600 + n,
                request_end_time=now - 600 + n + 0.2 + (n % 7) * 0.3,
                tags=["nightly"] if n % 2 else ["eval", "beta"],
                metadata={"user": f"u{n % 4}"},
                input_tokens=100 + n,
                output_tokens=20 + n,
                score=n % 100,
                status="ERROR" if n % 11 == 0 else "SUCCESS",
            )
        assert client.flush(timeout=10)
    return served


def sign_in(page: Any, served: RunningServer, path: str) -> None:
    page.goto(served.base_url + path)
    page.fill("#api_key", served.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/requests.*"))


def test_on_a_phone_the_request_list_fits_the_screen_as_cards(
    browser: Any, logged: RunningServer
) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, logged, "/dashboard/requests")
        assert page.locator("#requests tbody tr").count() == 50
        # Nothing wider than the screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        card = page.locator("#requests tbody tr").first
        assert card.evaluate("e => getComputedStyle(e).display") == "grid"
        # Numbers two to a line: Tokens and Latency share one.
        tokens, latency = (
            card.locator(f"td[data-label={name}]").bounding_box() for name in ("Tokens", "Latency")
        )
        assert tokens is not None and latency is not None
        assert tokens["y"] == latency["y"] and tokens["x"] < latency["x"]
        assert "Report 59 says sales rose." in card.inner_text()
        label = card.locator("td[data-label=Input]").evaluate(
            "e => getComputedStyle(e, '::before').content"
        )
        assert label == '"Input"'  # each value under its column's name
        screenshot(page, "requests-phone")
        page.goto(logged.base_url + "/dashboard/?range=1h")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "overview-phone")
    finally:
        context.close()
    assert problems == []


def test_sorting_by_a_header_and_paging_on_keep_the_order(page: Any, logged: RunningServer) -> None:
    sign_in(page, logged, "/dashboard/requests?tag=nightly")
    page.click("#requests thead a:has-text('Latency')")
    page.wait_for_url(re.compile(r".*sort=latency.*"))
    latencies = page.locator("#requests tbody td[data-label=Latency]").all_inner_texts()
    values = [float(t.replace(" ms", "e-3").replace(" s", "")) for t in latencies]
    assert values == sorted(values, reverse=True) and len(values) == 30
    page.click("#requests thead a:has-text('Latency')")  # again: the other way
    page.wait_for_url(re.compile(r".*order=asc.*"))
    latencies = page.locator("#requests tbody td[data-label=Latency]").all_inner_texts()
    values = [float(t.replace(" ms", "e-3").replace(" s", "")) for t in latencies]
    assert values == sorted(values)
    screenshot(page, "requests-sorted")
    sign_in_again = logged.base_url + "/dashboard/requests"
    page.goto(sign_in_again)
    page.click("#next")
    page.wait_for_url(re.compile(r".*after=.*"))
    assert page.locator("#requests tbody tr").count() == 10
    page.click("#previous")
    page.wait_for_url(re.compile(r".*before=.*"))
    assert page.locator("#requests tbody tr").count() == 50
