"""The spec's retry section, against a stub registry that fails on demand.

stamina's testing mode makes the waits instant; the WARNING before each retry still names the
wait the spec documents (2, 4, 8 s; at most 15).
"""

from __future__ import annotations

import pytest

from promptrun import (
    PromptLayer,
    PromptLayerAPIConnectionError,
    PromptLayerAPIError,
    PromptLayerAPITimeoutError,
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
)

from .._registry_stub import StubRegistry

PATH = "/prompt-templates/TestPrompt"

pytestmark = pytest.mark.usefixtures("instant_retries")


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "promptlayer" and r.getMessage().startswith("Retrying in ")
    ]


def waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [line.split("...")[0] + "..." for line in retry_lines(caplog)]


def test_total_attempts_4_attempts_1_initial_plus_3_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue(PATH, 500, 500, 500, 500, 500)
    with PromptLayer() as pl, pytest.raises(PromptLayerInternalServerError):
        pl.templates.get("TestPrompt")
    assert stub.hits[PATH] == 4
    assert waits(caplog) == [
        "Retrying in 2 seconds...",
        "Retrying in 4 seconds...",
        "Retrying in 8 seconds...",
    ]


def test_max_wait_time_15_seconds_maximum_wait_between_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    asks_for_a_minute = {"status": 429, "headers": {"Retry-After": "60"}}
    stub.queue(PATH, asks_for_a_minute, asks_for_a_minute, asks_for_a_minute)
    with PromptLayer() as pl:
        assert pl.templates.get("TestPrompt")["prompt_name"] == "TestPrompt"
    assert waits(caplog) == ["Retrying in 15 seconds..."] * 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_server_errors_trigger_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    stub.queue(PATH, status, status)
    with PromptLayer() as pl:
        assert pl.templates.get("TestPrompt")["prompt_name"] == "TestPrompt"
    assert stub.hits[PATH] == 3
    assert waits(caplog) == ["Retrying in 2 seconds...", "Retrying in 4 seconds..."]


def test_429_rate_limit_errors_trigger_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue(PATH, {"status": 429, "body": {"message": "slow down"}})
    with PromptLayer() as pl:
        assert pl.templates.get("TestPrompt")["prompt_name"] == "TestPrompt"
    assert stub.hits[PATH] == 2
    [line] = retry_lines(caplog)
    assert line.startswith("Retrying in 2 seconds... (")
    assert "slow down (HTTP 429)" in line


def test_429_rate_limit_errors_raise_after_the_last_attempt(stub: StubRegistry) -> None:
    stub.queue(PATH, 429, 429, 429, 429)
    with PromptLayer() as pl, pytest.raises(PromptLayerRateLimitError):
        pl.templates.get("TestPrompt")
    assert stub.hits[PATH] == 4


def test_connection_errors_fail_immediately_with_no_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue(PATH, "drop")
    with PromptLayer() as pl, pytest.raises(PromptLayerAPIConnectionError, match="TestPrompt"):
        pl.templates.get("TestPrompt")
    assert stub.hits[PATH] == 1
    assert retry_lines(caplog) == []


def test_timeout_errors_fail_immediately_with_no_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTLAYER_HTTP_TIMEOUT", "0.5")
    stub.queue(PATH, "hang")
    with PromptLayer() as pl, pytest.raises(PromptLayerAPITimeoutError, match="TestPrompt"):
        pl.templates.get("TestPrompt")
    assert stub.hits[PATH] == 1
    assert retry_lines(caplog) == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_4xx_client_errors_except_429_fail_immediately_with_no_retries(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    stub.queue(PATH, status)
    with PromptLayer() as pl, pytest.raises(PromptLayerAPIError) as raised:
        pl.templates.get("TestPrompt")
    assert raised.value.status_code == status
    assert stub.hits[PATH] == 1
    assert retry_lines(caplog) == []


def test_the_retry_mechanism_operates_transparently_so_the_call_just_succeeds(
    stub: StubRegistry,
) -> None:
    stub.queue(PATH, 503, 500, 429)
    with PromptLayer() as pl:
        response = pl.run(prompt_name="TestPrompt")
    assert response["raw_response"].choices[0].message.content
    assert stub.hits[PATH] == 4


def test_each_retry_warning_says_once_what_failed(
    stub: StubRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    stub.queue(PATH, 503)
    with PromptLayer() as pl:
        pl.templates.get("TestPrompt")
    [line] = retry_lines(caplog)
    assert line == (
        "Retrying in 2 seconds... (fetching prompt template 'TestPrompt': "
        "stub failure 503 (HTTP 503))"
    )
