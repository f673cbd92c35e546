"""Field and size limits: a body past one is a 400 that names the field and the limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from promptrun.testing import RunningServer, running_server

from ..server._api import log_body, track_body
from ._http import Http
from ._samples import publish_body

LONG = "x" * 513


@pytest.fixture(scope="module")
def http() -> Iterator[Http]:
    with running_server(sandbox=False) as srv:
        yield _seeded(srv)


def _seeded(srv: RunningServer) -> Http:
    http = Http(srv.base_url, srv.api_key)
    http.ok("POST", "/rest/prompt-templates", publish_body("greet"))
    http.ok("POST", "/track-request", track_body())
    return http


def _publish(name: str = "ok", **template_part: Any) -> dict[str, Any]:
    body = publish_body(name)
    body["prompt_template"].update(template_part)
    return body


@pytest.mark.parametrize(
    ("path", "body", "where", "limit"),
    [
        ("/rest/prompt-templates", _publish(LONG), "$.prompt_template.prompt_name", "512"),
        ("/rest/prompt-templates", _publish(""), "$.prompt_template.prompt_name", "1"),
        ("/rest/prompt-templates", _publish(tags=["t"] * 101), "$.prompt_template.tags", "100"),
        ("/rest/prompt-templates", _publish(tags=[LONG]), "$.prompt_template.tags[0]", "512"),
        ("/rest/prompt-templates", {**_publish(), "release_labels": [LONG]},
         "$.release_labels[0]", "512"),
        ("/track-request", track_body(tags=["t"] * 101), "$.tags", "100"),
        ("/track-request", track_body(function_name=LONG), "$.function_name", "512"),
        ("/track-request", track_body(group_id=2**63), "$.group_id", str(2**63 - 1)),
        ("/track-request", track_body(prompt_id=-1), "$.prompt_id", "0"),
        ("/track-request", track_body(error_message="e" * 65_537), "$.error_message", "65536"),
        ("/log-request", log_body(input_tokens=2**64), "$.input_tokens", "1000000000"),
        ("/log-request", log_body(price=1e7), "$.price", "1000000"),
        ("/log-request", log_body(model=LONG), "$.model", "512"),
        ("/library-track-score", {"request_id": 2**64, "score": 1}, "$.request_id", ""),
        ("/library-track-score", {"request_id": LONG, "score": 1}, "$.request_id", ""),
        ("/library-track-metadata",
         {"request_id": 1, "metadata": {str(i): "v" for i in range(1001)}},
         "metadata has 1,001 keys", "1,000"),
        ("/library-track-metadata", {"request_id": 1, "metadata": {LONG: "v"}}, "metadata key", "512"),
        ("/library-track-metadata", {"request_id": 1, "metadata": {"k": "v" * 1001}},
         "metadata value of 'k'", "1,000"),
        ("/log-request", log_body(metadata={str(i): "v" for i in range(1001)}),
         "metadata has 1,001 keys", "1,000"),
        ("/track-request", track_body(metadata={"k": "v" * 1001}), "metadata value of 'k'", "1,000"),
        ("/track-group", {"request_id": 1, "group_id": 10**30}, "$.group_id", ""),
        ("/prompt-templates/greet", {"version": 2**70}, "$.version", ""),
        ("/prompt-templates/greet", {"label": LONG}, "$.label", "512"),
        ("/promptrun/v1/ingest",
         {"records": [{"type": "log", "client_request_id": "x", "body": {}}] * 10_001},
         "$.records", "10000"),
    ],
)  # fmt: skip
def test_a_field_past_its_limit_is_a_400_naming_it(
    http: Http, path: str, body: Any, where: str, limit: str
) -> None:
    answer = http.call("POST", path, body)
    assert answer.status == 400, answer.raw[:300]
    message = answer.json()["message"]
    assert message.startswith("invalid request body: ")
    assert where in message
    assert limit in message


def test_bodies_at_the_limits_are_accepted(http: Http) -> None:
    name = "n" * 512
    assert (
        http.call("POST", "/rest/prompt-templates", _publish(name, tags=["t" * 512] * 100)).status
        == 201
    )
    tracked = track_body(tags=["t"] * 100, group_id=None, prompt_id=2**63 - 1)
    assert http.call("POST", "/track-request", tracked).status == 200
    metadata = {**{str(i): "v" * 100 for i in range(999)}, "k" * 512: "v" * 1000}
    assert http.call("POST", "/library-track-metadata", {"request_id": 1, "metadata": metadata}).status == 200  # fmt: skip


def test_a_template_name_in_the_path_past_512_characters_is_a_400(http: Http) -> None:
    answer = http.call("POST", "/prompt-templates/" + "n" * 513, {})
    assert answer.status == 400
    assert "512" in answer.json()["message"]


@pytest.mark.parametrize(
    "ref", ["99999999999999999999999", "9223372036854775808", "%C2%B2", "%D9%A3"]
)
def test_a_request_ref_that_cannot_be_an_id_is_not_found(http: Http, ref: str) -> None:
    answer = http.call("GET", f"/promptrun/v1/requests/{ref}")
    assert answer.status == 404
    assert answer.is_json_error


@pytest.mark.parametrize(
    "query",
    ["page=1000000001", "page=99999999999999999999", "per_page=1001", "page=", "page=x"],
)
def test_paging_past_its_bounds_is_a_400(http: Http, query: str) -> None:
    answer = http.call("GET", f"/prompt-templates?{query}")
    assert answer.status == 400
    assert "query parameter" in answer.json()["message"]


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "limit=0", "offset=-1"])
def test_request_listing_past_its_bounds_is_a_400(http: Http, query: str) -> None:
    assert http.call("GET", f"/promptrun/v1/requests?{query}").status == 400


@pytest.mark.parametrize("depth", [200, 5_000, 100_000])
def test_deeply_nested_json_is_a_400(http: Http, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    body = (
        b'{"function_name": "f", "kwargs": {"a": '
        + nested
        + b'}, "request_start_time": 1, "request_end_time": 2}'
    )
    answer = http.call("POST", "/track-request", body)
    assert answer.status in (200, 400), answer.raw[:200]
    if answer.status == 400:
        assert "nested too deeply" in answer.json()["message"]
    assert http.call("GET", "/health").status == 200


def test_an_ingest_record_with_a_client_id_past_512_characters_is_rejected_alone(
    http: Http,
) -> None:
    records = [
        {"type": "log", "client_request_id": LONG, "body": log_body()},
        {"type": "log", "client_request_id": "short-and-fine", "body": log_body()},
    ]
    results = http.ok("POST", "/promptrun/v1/ingest", {"records": records})["results"]
    assert [r["status"] for r in results] == ["rejected", "stored"]
    assert "512" in results[0]["error"]


def test_a_body_over_the_size_limit_is_a_413(http: Http) -> None:
    answer = http.call("POST", "/prompt-templates/x", b'{"x": "' + b"y" * (5 * 1024 * 1024) + b'"}')
    assert answer.status == 413
    assert answer.is_json_error
    # The logging endpoints take one long-context record (32 MiB), and no more.
    answer = http.call("POST", "/track-request", b'{"x": "' + b"y" * (33 * 1024 * 1024) + b'"}')
    assert answer.status == 413
    assert answer.is_json_error
