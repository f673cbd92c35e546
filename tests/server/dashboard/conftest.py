"""Dashboard fixtures: the app on a loopback TestServer with two workspaces, a visitor, and
Debian's Chromium under Playwright for the browser tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app

from ._dash import KEY, OTHER_KEY, Visitor


@pytest.fixture
async def visitor(tmp_path: Path) -> AsyncIterator[Visitor]:
    config = ServerConfig(
        db_path=tmp_path / "promptrun.db",
        api_keys=(KEY, f"other:{OTHER_KEY}"),
        generate_key=False,
        sandbox=False,
    )
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Visitor(client)


@pytest.fixture
async def signed_in(visitor: Visitor) -> Visitor:
    status, _ = await visitor.sign_in()
    assert status == 200
    return visitor


# -- the browser ---------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[2] / "artifacts" / "screenshots"


def _unavailable(reason: str) -> None:
    # In CI a missing browser is a broken setup (the Makefile installs it), never a skip.
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests need {reason} (make deps installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright; one per test module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    # A blocked inline script (CSP) or a failed fetch shows up here.
    assert problems == []


def screenshot(page: Any, name: str) -> None:
    """Keep a full-page picture as a test artifact, under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
