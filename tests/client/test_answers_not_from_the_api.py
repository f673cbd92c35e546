"""Answers that did not come from the PromptLayer API (HTML from a wrong base URL, a proxy's
page, JSON of another shape), slow or absent servers: each is a failure that says what came
back from where and what to check, and no record is counted shipped that was not."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptrun import AsyncPromptLayer, PromptLayer
from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
    PromptLayerNotFoundError,
    PromptLayerUnexpectedAnswerError,
)
from promptrun.testing import RunningServer

from .._registry_stub import StubRegistry, chat_template, stub_registry

CHAT = {"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
pytestmark = pytest.mark.anyio

HTML = {"status": 200, "text": "<html><body>Sign in</body></html>"}


@pytest.fixture
def stub() -> Iterator[StubRegistry]:
    with stub_registry() as s:
        s.publish("greet", chat_template())
        yield s


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def log_one_through(stub: StubRegistry, tmp_path: Path) -> dict[str, int]:
    """One log_request() to the stub, flushed until it is shipped: the client's stats."""
    async with AsyncPromptLayer(api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path) as pl:
        await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
        assert await pl.flush(timeout=30)
        return pl.stats()


async def test_a_log_record_answered_with_html_is_kept_retried_and_the_url_named(
    stub: StubRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue("/log-request", HTML, HTML)
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        stats = await log_one_through(stub, tmp_path)
    assert (stats["shipped"], stats["failed"], stats["pending"]) == (1, 0, 0)
    assert len(stub.bodies("/log-request")) == 3  # two HTML answers, then stored
    [why] = [w for w in warnings(caplog) if "could not ship" in w]
    assert f"the server at {stub.base_url}/log-request answered HTML (HTTP 200" in why
    assert "is base_url (or PROMPTLAYER_BASE_URL) the API's root" in why


async def test_a_log_record_answered_with_json_of_another_shape_is_kept_and_retried(
    stub: StubRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue("/log-request", {"status": 201, "body": {"hello": "world"}})
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        stats = await log_one_through(stub, tmp_path)
    assert (stats["shipped"], stats["failed"]) == (1, 0)
    assert len(stub.bodies("/log-request")) == 2
    assert any("answered JSON that is not a logged request's id" in w for w in warnings(caplog))


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"status": 204, "text": "", "content_type": "text/plain"}, "answered with an empty body"),
        ({"status": 202, "body": {"id": 5}}, "answered JSON that is not what the API answers"),
        ({"status": 301, "text": "moved", "content_type": "text/plain"}, "with a redirect"),
        ({"status": 200, "text": "", "content_type": "text/plain"}, "with an empty body"),
    ],
    ids=["204-empty", "202-json", "301-no-location", "200-empty-text"],
)
async def test_a_log_record_answered_with_a_success_or_redirect_not_from_the_api_is_retried(
    answer: dict[str, object],
    said: str,
    stub: StubRegistry,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub.queue("/log-request", answer)
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        stats = await log_one_through(stub, tmp_path)
    assert (stats["shipped"], stats["failed"]) == (1, 0)
    assert len(stub.bodies("/log-request")) == 2  # the odd answer, then stored
    [why] = [w for w in warnings(caplog) if "could not ship" in w]
    assert said in why and f"HTTP {answer['status']}" in why
    assert "None (HTTP" not in why
    if answer.get("text") == "":
        assert "JSON" not in why  # an empty body is not described as JSON


async def test_the_delivery_mode_is_said_once_however_often_shipping_is_retried(
    stub: StubRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue("/log-request", HTML, HTML, HTML)
    with caplog.at_level(logging.INFO, logger="promptlayer"):
        stats = await log_one_through(stub, tmp_path)
    assert stats["shipped"] == 1 and len(stub.bodies("/log-request")) == 4
    said = [r for r in caplog.records if "promptrun ships log records to" in r.getMessage()]
    assert len(said) == 1


async def test_a_wrong_base_url_answering_html_keeps_every_record_in_the_spool(
    server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = server.base_url + "/dashboard"
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with AsyncPromptLayer(
            api_key=server.api_key, base_url=wrong, spool_dir=tmp_path, shutdown_timeout=0.2
        ) as pl:
            await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
            assert not await pl.flush(timeout=1)
            stats = pl.stats()
    assert (stats["shipped"], stats["failed"], stats["pending"]) == (0, 0, 1)
    assert any(wrong in w and "answered HTML" in w for w in warnings(caplog))


async def test_an_inline_run_answered_with_html_ships_its_record_in_the_background(
    stub: StubRegistry, provider_env: RunningServer, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    stub.queue("/track-request", HTML)
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with AsyncPromptLayer(
            api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path, inline_logging=True
        ) as pl:
            result = await pl.run("greet", input_variables={"name": "Ada"})
            assert await pl.flush(timeout=30)
            assert pl.stats()["shipped"] == 1
    assert str(result["request_id"]).startswith("req_")  # not the server's id: not logged inline
    assert len(stub.bodies("/track-request")) == 2  # the HTML answer, then the background one
    [why] = [w for w in warnings(caplog) if w.startswith("logging inline failed")]
    assert f"{stub.base_url}/track-request answered HTML" in why


@pytest.mark.parametrize("answer", [HTML, 500], ids=["html", "http-500"])
async def test_an_inline_log_request_the_server_did_not_take_ships_in_the_background(
    answer: object, stub: StubRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue("/log-request", *[answer] * 4)  # 500: the spec's four attempts
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with AsyncPromptLayer(
            api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path, inline_logging=True
        ) as pl:
            result = await pl.log_request("openai", "m", CHAT, CHAT, 1.0, 2.0)
            assert await pl.flush(timeout=30)
            assert pl.stats()["shipped"] == 1
    assert str(result["request_id"]).startswith("req_")
    assert len(stub.bodies("/log-request")) == 5  # four answers not taken, then stored
    assert any(w.startswith("logging inline failed") for w in warnings(caplog))


async def test_a_template_fetch_answered_with_html_says_so_instead_of_not_found(
    stub: StubRegistry, tmp_path: Path
) -> None:
    stub.queue("/prompt-templates/greet", HTML, {"status": 200, "body": {"id": 1}})
    async with AsyncPromptLayer(api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path) as pl:
        with pytest.raises(PromptLayerUnexpectedAnswerError) as html:
            await pl.templates.get("greet")
        with pytest.raises(PromptLayerUnexpectedAnswerError) as other:
            await pl.run("greet", input_variables={"name": "Ada"})
    assert not isinstance(html.value, PromptLayerNotFoundError)
    assert (
        f"fetching prompt template 'greet': the server at {stub.base_url}/prompt-templates/greet "
        "answered HTML (HTTP 200, text/html: '<html><body>Sign in</body></html>')"
    ) in str(html.value)
    assert "answered JSON that is not a prompt template" in str(other.value)


def test_a_template_fetch_from_a_wrong_base_url_names_it(
    server: RunningServer, tmp_path: Path
) -> None:
    wrong = server.base_url + "/dashboard"
    with (
        PromptLayer(api_key=server.api_key, base_url=wrong, spool_dir=tmp_path) as pl,
        pytest.raises(PromptLayerUnexpectedAnswerError, match="is base_url"),
    ):
        pl.run("greet")


async def test_a_timeout_names_the_seconds_and_the_setting_that_changes_them(
    stub: StubRegistry, tmp_path: Path
) -> None:
    stub.queue("/prompt-templates/greet", "hang")
    async with AsyncPromptLayer(
        api_key="pl_k", base_url=stub.base_url, spool_dir=tmp_path, http_timeout=0.3
    ) as pl:
        with pytest.raises(PromptLayerAPITimeoutError) as caught:
            await pl.templates.get("greet")
    assert f"no answer from {stub.base_url} within 0.3 s" in str(caught.value)
    assert "http_timeout=... (or PROMPTLAYER_HTTP_TIMEOUT)" in str(caught.value)


async def test_a_server_that_cannot_be_reached_is_named_with_what_to_check(
    tmp_path: Path,
) -> None:
    async with AsyncPromptLayer(
        api_key="pl_k", base_url="http://127.0.0.1:9", spool_dir=tmp_path, shutdown_timeout=0.1
    ) as pl:
        with pytest.raises(PromptLayerAPIConnectionError) as caught:
            await pl.templates.get("greet")
    assert "could not reach http://127.0.0.1:9" in str(caught.value)
    assert "is the server running there?" in str(caught.value)
