"""OpenAI Chat Completions and the Responses API: the native transport against the openai
SDK, the reference.

Each case runs one template through the SDK path (``native_transport=False``) and then the
native path, both through a recording proxy in front of the sandbox that answers the second
exactly as the first was answered. Asserted equal: the requests on the wire (method, path,
headers other than the user agent, the SDK's telemetry and transport headers, JSON body),
``raw_response.model_dump()`` (each chunk's for a stream), the blueprints, the log records
the server stored, and for failures the exception's class, message, status and body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from promptrun.testing import RunningServer

from .._clients import Factory, Probe, example
from ._harness import VARS, both_paths, publish
from ._openai_corpus import ASK, CORPORA, version
from ._tape import Tape, start_tape

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tape(provider_env: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tape]:
    recorder, runner, url = await start_tape(provider_env.base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", url + "/sandbox/openai/v1")
    try:
        yield recorder
    finally:
        await runner.cleanup()


CASES = [(api, name) for api, corpus in CORPORA.items() for name in sorted(corpus)]
API = pytest.mark.parametrize("api", sorted(CORPORA))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(("api", "name"), CASES)
async def test_the_native_path_sends_and_answers_what_the_sdk_does(
    make_client: Factory, probe: Probe, tape: Tape, api: str, name: str, stream: bool
) -> None:
    sdk, native = await both_paths(make_client, probe, tape, CORPORA[api], name, stream)
    assert "error" not in sdk
    assert native == sdk
    path = "/v1/responses" if api == "responses" else "/v1/chat/completions"
    assert all(s.path.endswith(path) for s in tape.sent)


@API
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    ("status", "times", "error"),
    [
        (400, 1, openai.BadRequestError),
        (401, 1, openai.AuthenticationError),
        (429, 3, openai.RateLimitError),
        (500, 3, openai.InternalServerError),
    ],
)
async def test_a_provider_error_is_the_sdks_exception_after_the_sdks_retries(
    make_client: Factory,
    probe: Probe,
    tape: Tape,
    status: int,
    times: int,
    error: type[Exception],
    stream: bool,
    api: str,
) -> None:
    fail: dict[str, Any] = {"status": status, "provider": "openai", "times": times}
    if status == 429:
        fail["retry_after"] = 0.01
    sdk, native = await both_paths(
        make_client, probe, tape, CORPORA[api], "greet", stream, fail=[fail]
    )
    assert issubclass(sdk["error"]["type"], error)
    assert native == sdk
    assert len(tape.sent) == times


@API
async def test_a_rate_limit_is_retried_after_its_retry_after_and_then_answers(
    make_client: Factory, probe: Probe, tape: Tape, api: str
) -> None:
    fail = {"status": 429, "provider": "openai", "times": 1, "retry_after": 0.01}
    sdk, native = await both_paths(
        make_client, probe, tape, CORPORA[api], "greet", False, fail=[fail]
    )
    assert "raw" in sdk
    assert native == sdk
    assert len(tape.sent) == 2


@API
async def test_a_stream_cut_mid_way_raises_the_sdks_connection_error(
    make_client: Factory, probe: Probe, tape: Tape, api: str
) -> None:
    cut = {"cut_after_chunks": 3, "provider": "openai"}
    sdk, native = await both_paths(
        make_client, probe, tape, CORPORA[api], "greet", True, chunks=10, fail=[cut]
    )
    assert sdk["error"]["type"] is openai.APIConnectionError
    assert native == sdk


def test_the_corpus_holds_every_openai_example_template() -> None:
    assert example("greet")["metadata"]["model"]["provider"] == "openai"


@API
async def test_a_parameter_the_sdk_does_not_name_goes_through_the_sdk(
    make_client: Factory, probe: Probe, tape: Tape, api: str
) -> None:
    template = version([ASK], {"some_future_parameter": 1})
    if api == "responses":
        template["metadata"]["model"]["api_type"] = "responses"
    await publish(probe, {"future_parameter": template}, "future_parameter")
    async with make_client() as pl:
        await pl.run("future_parameter", input_variables=VARS)
    [sent] = tape.sent
    assert "x-stainless-lang" in sent.headers
    assert sent.body["some_future_parameter"] == 1
