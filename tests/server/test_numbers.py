"""Numbers the logging endpoints accept are range-checked: times, token counts, prices."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import Api, log_body, track_body

pytestmark = pytest.mark.anyio

MS = 1_700_000_000_000.0  # 2023 in milliseconds: the classic mistake


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("request_start_time", MS, "milliseconds"),
        ("request_end_time", MS * 1000, "microseconds"),
        ("request_start_time", -1e300, "1970"),
        ("request_end_time", 1e300, "1970"),
        ("request_start_time", -1, "1970"),
        ("request_start_time", "9999-01-01T00:00:00Z", "9999-01-01"),
        ("request_end_time", "0001-01-01T00:00:00Z", "0001-01-01"),
    ],
)
@pytest.mark.parametrize("endpoint", ["/track-request", "/log-request"])
async def test_a_time_out_of_range_is_a_400_naming_the_field(
    api: Api, endpoint: str, field: str, value: Any, says: str
) -> None:
    body = (track_body if endpoint == "/track-request" else log_body)(**{field: value})

    status, answer = await api.call("POST", endpoint, body)

    assert status == 400
    assert field in answer["message"]
    assert says in answer["message"]
    assert (await api.requests())["total"] == 0


async def test_a_time_past_what_a_double_holds_is_a_400(api: Api) -> None:
    raw = (
        b'{"function_name": "openai.chat.completions.create", "kwargs": {}, '
        b'"request_start_time": 1e999, "request_end_time": 1700000000}'
    )
    status, answer = await api.call(
        "POST", "/track-request", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert "request_start_time" in answer["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_tokens", -1), ("output_tokens", 10**12), ("input_tokens", 2**63 - 1),
     ("price", -0.01), ("price", 1e300)],
)  # fmt: skip
async def test_log_request_token_counts_and_prices_out_of_range_are_400s(
    api: Api, field: str, value: Any
) -> None:
    status, answer = await api.call("POST", "/log-request", log_body(**{field: value}))
    assert status == 400
    assert field in answer["message"]


async def test_an_end_before_the_start_is_stored_as_given(api: Api) -> None:
    body = track_body(request_start_time=1_700_000_010.0, request_end_time=1_700_000_000.0)
    status, answer = await api.call("POST", "/track-request", body)
    assert status == 200
    stored = await api.request(answer["request_id"])
    assert stored["request_end_time"] < stored["request_start_time"]


async def test_absurd_token_counts_in_a_provider_response_count_as_unknown(api: Api) -> None:
    body = track_body()
    body["request_response"]["usage"] = {"prompt_tokens": 10**15, "completion_tokens": -5}
    status, answer = await api.call("POST", "/track-request", body)
    assert status == 200
    stored = await api.request(answer["request_id"])
    assert (stored["input_tokens"], stored["output_tokens"]) == (0, 0)


async def test_a_bad_time_rejects_only_its_record_in_an_ingest_batch(api: Api) -> None:
    records = [
        {"type": "track", "client_request_id": "bad", "body": track_body(request_start_time=MS)},
        {"type": "log", "client_request_id": "good", "body": log_body()},
        {"type": "log", "client_request_id": "cheap", "body": log_body(price=-1)},
    ]
    answer = await api.ok("POST", "/promptrun/v1/ingest", {"records": records})
    results = {r["client_request_id"]: r for r in answer["results"]}

    assert results["bad"]["status"] == "rejected"
    assert "request_start_time" in results["bad"]["error"]
    assert "milliseconds" in results["bad"]["error"]
    assert results["good"]["status"] == "stored"
    assert results["cheap"]["status"] == "rejected"
    assert "price" in results["cheap"]["error"]
    assert (await api.requests())["total"] == 1
