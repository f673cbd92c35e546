"""Bad input: each gets the right 4xx as JSON, and nothing stored changes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from promptrun.server.app import ServerConfig

from ._api import Api, track_body

pytestmark = pytest.mark.anyio


async def snapshot(api: Api) -> tuple[Any, Any]:
    return await api.requests(limit=1000), await api.ok("GET", "/prompt-templates")


@pytest.fixture
async def seeded(api: Api) -> Api:
    await api.publish("greet", labels=["prod"])
    await api.call("POST", "/track-request", track_body())
    return api


@pytest.mark.parametrize(
    ("path", "data", "fragment"),
    [
        ("/track-request", b"{not json", "not valid JSON"),
        ("/track-request", b"[1, 2]", "Expected `object`"),
        ("/rest/prompt-templates", b'{"prompt_template": ', "not valid JSON"),
        ("/promptrun/v1/ingest", b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_malformed_json_is_a_400(seeded: Api, path: str, data: bytes, fragment: str) -> None:
    before = await snapshot(seeded)
    status, answer = await seeded.call("POST", path, data=data)
    assert status == 400
    assert answer["success"] is False
    assert fragment in answer["message"]
    assert await snapshot(seeded) == before


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/track-request", track_body(kwargs="nope"), "$.kwargs"),
        ("/track-request", track_body(tags="t1"), "$.tags"),
        ("/prompt-templates/greet", {"version": "one"}, "$.version"),
        ("/log-request", {"provider": "openai"}, "missing required field"),
        ("/promptrun/v1/ingest", {"records": [], "surprise": 1}, "unknown field `surprise`"),
        ("/rest/prompt-templates", {"prompt_version": {}}, "missing required field"),
        ("/library-track-score", {"score": 5}, "request_id"),
    ],
)
async def test_wrong_types_missing_and_unknown_fields_are_400s_naming_the_field(
    seeded: Api, path: str, body: dict[str, Any], fragment: str
) -> None:
    before = await snapshot(seeded)
    status, answer = await seeded.call("POST", path, body)
    assert status == 400
    assert fragment in answer["message"]
    assert await snapshot(seeded) == before


async def test_an_oversized_body_is_a_413_and_the_server_keeps_working(
    seeded: Api, config: ServerConfig
) -> None:
    before = await snapshot(seeded)
    big = {"input_variables": {"blob": "x" * (config.max_body_bytes + 10)}}
    # A file-like body: aiohttp warns about (and tests turn into errors) large raw bytes.
    status, answer = await seeded.call(
        "POST", "/prompt-templates/greet", data=io.BytesIO(json.dumps(big).encode())
    )
    assert status == 413
    assert "--max-body-bytes" in answer["message"]
    big = track_body(metadata={"blob": "x" * (config.max_record_bytes + 10)})
    status, answer = await seeded.call(
        "POST", "/track-request", data=io.BytesIO(json.dumps(big).encode())
    )
    assert status == 413
    assert "--max-record-bytes" in answer["message"]
    assert await snapshot(seeded) == before
    assert (await seeded.call("POST", "/track-request", track_body()))[0] == 200


async def test_an_unknown_path_is_a_json_404(api: Api) -> None:
    status, answer = await api.call("GET", "/no/such/thing")
    assert status == 404
    assert answer == {"success": False, "message": "no such endpoint: GET /no/such/thing"}


async def test_a_wrong_method_is_a_json_405_naming_the_right_one(api: Api) -> None:
    status, answer = await api.call("GET", "/track-request")
    assert status == 405
    assert "POST" in answer["message"]


async def test_an_empty_body_counts_as_an_empty_object(api: Api) -> None:
    await api.publish()
    status, answer = await api.call("POST", "/prompt-templates/greet", data=b"")
    assert status == 200
    assert answer["version"] == 1


async def test_a_bad_page_size_for_requests_is_a_400(api: Api) -> None:
    status, answer = await api.call("GET", "/promptrun/v1/requests?limit=abc")
    assert status == 400
    assert "limit" in answer["message"]


async def test_a_body_that_cannot_be_decompressed_is_a_400_saying_so(seeded: Api) -> None:
    before = await snapshot(seeded)
    status, answer = await seeded.call(
        "POST",
        "/track-request",
        data=b"this is not gzip",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 400
    assert "the request body cannot be read" in answer["message"]
    assert await snapshot(seeded) == before
