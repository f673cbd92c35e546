"""``POST /v1/traces``: OTLP/HTTP as its specification describes it, on both stores.

Requests are built with the OTLP generated classes (as an exporter builds them) or as
OTLP/JSON; answers are decoded with the same classes, so the hand-encoded answers are checked
against the real message definitions.
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from promptrun.server import otlp

from ._api import KEY, OTHER_KEY, Api

pytestmark = pytest.mark.anyio

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
ROOT = bytes.fromhex("eee19b7ec3c1b174")
CHILD = bytes.fromhex("eee19b7ec3c1b173")
START = 1_700_000_000_000_000_000
PROTO = {"Content-Type": "application/x-protobuf"}
JSON_TYPE = {"Content-Type": "application/json"}


def attribute(key: str, value: Any) -> KeyValue:
    any_value = AnyValue()
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    elif isinstance(value, bytes):
        any_value.bytes_value = value
    else:
        any_value.string_value = value
    return KeyValue(key=key, value=any_value)


def proto_span(span_id: bytes, parent: bytes = b"", trace_id: bytes = TRACE, **fields: Any) -> Span:
    span = Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=fields.pop("name", "work"),
        kind=fields.pop("kind", Span.SPAN_KIND_INTERNAL),
        start_time_unix_nano=fields.pop("start", START),
        end_time_unix_nano=fields.pop("end", START + 2_000_000),
    )
    for key, value in fields.pop("attributes", {}).items():
        span.attributes.append(attribute(key, value))
    return span


def proto_request(*spans: Span, service: str = "checkout") -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(attribute("service.name", service))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests.manual"
    scope_spans.scope.version = "1.0"
    scope_spans.spans.extend(spans)
    return request.SerializeToString()


async def post(
    api: Api, body: bytes, headers: dict[str, str] | None = None, key: str | None = KEY
) -> tuple[int, str, bytes, Any]:
    """(status, content type, body, headers) of ``POST /v1/traces``."""
    sent = dict(PROTO if headers is None else headers)
    if key is not None:
        sent["X-Api-Key"] = key
    async with api.client.post("/v1/traces", data=body, headers=sent) as response:
        return response.status, response.content_type, await response.read(), response.headers


async def trace(api: Api, trace_id: bytes = TRACE, key: str = KEY) -> dict[str, Any]:
    return await api.ok("GET", f"/promptrun/v1/traces/{trace_id.hex()}", key=key)  # type: ignore[no-any-return]


async def test_protobuf_spans_are_stored_and_answered_with_an_empty_protobuf_response(
    api: Api,
) -> None:
    body = proto_request(
        proto_span(
            ROOT,
            name="checkout",
            kind=Span.SPAN_KIND_SERVER,
            attributes={
                "http.method": "POST",
                "retries": 2,
                "ok": True,
                "ratio": 0.5,
                "raw": b"\x01\x02",
            },
        ),
        proto_span(CHILD, ROOT, name="charge card", start=START + 500_000, end=START + 1_500_000),
    )
    status, content_type, answer, _ = await post(api, body)
    assert (status, content_type) == (200, "application/x-protobuf")
    assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    stored = await trace(api)
    assert (stored["name"], stored["service_name"], stored["span_count"]) == (
        "checkout",
        "checkout",
        2,
    )
    root, child = stored["spans"]
    assert (root["span_id"], root["kind"], root["parent_span_id"]) == (ROOT.hex(), "server", None)
    assert root["attributes"] == {
        "http.method": "POST",
        "retries": 2,
        "ok": True,
        "ratio": 0.5,
        "raw": "AQI=",
    }
    assert root["resource"] == {"service.name": "checkout"}
    assert (root["scope_name"], root["scope_version"]) == ("tests.manual", "1.0")
    assert (child["parent_span_id"], child["duration_ms"]) == (ROOT.hex(), 1.0)


async def test_otlp_json_with_string_integers_and_enum_names_is_stored(api: Api) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "js"},
                        "spans": [
                            {
                                "traceId": TRACE.hex().upper(),
                                "spanId": ROOT.hex(),
                                "parentSpanId": "",
                                "name": "GET /cart",
                                "kind": 2,
                                "startTimeUnixNano": str(START),
                                "endTimeUnixNano": START + 3_000_000,
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {
                                        "key": "list",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "a"},
                                                    {"doubleValue": 1.5},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "map",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "k", "value": {"boolValue": False}}
                                                ]
                                            }
                                        },
                                    },
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": str(START + 1),
                                        "name": "cache miss",
                                        "attributes": [],
                                    }
                                ],
                                "status": {"code": "STATUS_CODE_ERROR", "message": "out of stock"},
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, content_type, answer, _ = await post(api, json.dumps(body).encode(), JSON_TYPE)
    assert (status, content_type, json.loads(answer)) == (200, "application/json", {})
    stored = await trace(api)
    (span,) = stored["spans"]
    assert (span["name"], span["kind"], span["status_code"], span["status_message"]) == (
        "GET /cart", "server", "ERROR", "out of stock",
    )  # fmt: skip
    assert span["attributes"] == {"n": 42, "list": ["a", 1.5], "map": {"k": False}}
    assert span["events"] == [{"name": "cache miss", "time_unix_nano": START + 1, "attributes": {}}]
    assert (stored["service_name"], stored["error_count"]) == ("web", 1)


async def test_a_gzip_body_is_read_like_a_plain_one(api: Api) -> None:
    body = gzip.compress(proto_request(proto_span(ROOT)))
    status, _, _, _ = await post(api, body, {**PROTO, "Content-Encoding": "gzip"})
    assert status == 200
    assert (await trace(api))["span_count"] == 1


async def test_spans_that_cannot_be_stored_are_refused_alone_with_a_partial_success(
    api: Api,
) -> None:
    body = proto_request(
        proto_span(ROOT),
        proto_span(b"\x01\x02", name="short id"),
        proto_span(CHILD, trace_id=b"\x00" * 16),
        proto_span(bytes.fromhex("0102030405060708"), start=2**64 - 1),
    )
    status, _, answer, _ = await post(api, body)
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(answer).partial_success
    assert partial.rejected_spans == 3
    assert "spanId '0102' is not 8 bytes" in partial.error_message
    assert "traceId is all zeros" in partial.error_message
    assert "outside 0..2^63-1 nanoseconds" in partial.error_message
    assert (await trace(api))["span_count"] == 1
    json_status, _, json_answer, _ = await post(
        api,
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}).encode(),
        JSON_TYPE,
    )
    assert json_status == 200
    assert json.loads(json_answer)["partialSuccess"]["rejectedSpans"] == 1


async def test_a_retried_export_stores_each_span_once(api: Api) -> None:
    body = proto_request(proto_span(ROOT), proto_span(CHILD, ROOT))
    for _ in range(3):
        assert (await post(api, body))[0] == 200
    assert (await trace(api))["span_count"] == 2


async def test_the_key_comes_from_x_api_key_or_a_bearer_token_and_is_checked_first(
    api: Api,
) -> None:
    body = proto_request(proto_span(ROOT))
    status, content_type, answer, _ = await post(api, body, key=None)
    assert (status, content_type) == (401, "application/x-protobuf")
    refusal = Status.FromString(answer)
    assert (refusal.code, "missing API key" in refusal.message) == (16, True)
    status, _, answer, _ = await post(api, b"{}", JSON_TYPE, key="pl_nobody")
    assert status == 401
    assert "unknown API key" in json.loads(answer)["message"]
    status, _, _, _ = await post(
        api, body, {**PROTO, "Authorization": f"Bearer {OTHER_KEY}"}, key=None
    )
    assert status == 200
    status, _ = await api.call("GET", f"/promptrun/v1/traces/{TRACE.hex()}")
    assert status == 404  # stored in the other workspace only
    assert (await trace(api, key=OTHER_KEY))["span_count"] == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "words"),
    [
        (PROTO, b"\xff\xff\xff", 400, "not an OTLP ExportTraceServiceRequest"),
        (JSON_TYPE, b'{"resourceSpans": 5}', 400, "not an OTLP/JSON ExportTraceServiceRequest"),
        (JSON_TYPE, b"[" * 100_000, 400, "not"),
        (JSON_TYPE, b'{"resourceSpans": [}', 400, "not an OTLP/JSON"),
        ({**PROTO, "Content-Encoding": "gzip"}, b"not gzip", 400, "cannot be read"),
        (
            {"Content-Type": "text/plain"},
            b"hello",
            415,
            "send application/x-protobuf or application/json",
        ),
    ],
)
async def test_a_body_that_is_not_an_export_request_is_a_400_status_that_says_why(
    api: Api, headers: dict[str, str], body: bytes, status: int, words: str
) -> None:
    got, content_type, answer, _ = await post(api, body, headers)
    assert got == status
    if content_type == "application/x-protobuf":
        refusal = Status.FromString(answer)
        code, message = refusal.code, refusal.message
    else:
        decoded = json.loads(answer)
        code, message = decoded["code"], decoded["message"]
    assert code == 3
    assert words in message


async def test_a_body_over_the_limit_after_decompression_is_a_413(api: Api) -> None:
    bomb = gzip.compress(b"\x00" * (8 * 1024 * 1024))  # 8 MiB of zeros in a few KiB
    assert len(bomb) < 64 * 1024
    status, _, answer, _ = await post(api, bomb, {**PROTO, "Content-Encoding": "gzip"})
    assert status == 413
    assert "after decompression" in Status.FromString(answer).message


async def test_the_traces_list_filters_and_bad_filters_say_what_is_wrong(api: Api) -> None:
    other_trace = bytes.fromhex("00000000000000000000000000000001")
    await post(api, proto_request(proto_span(ROOT, name="fast"), service="api"))
    await post(
        api,
        proto_request(
            proto_span(ROOT, trace_id=other_trace, name="slow", end=START + 9 * 10**9),
            service="worker",
        ),
    )
    listed = await api.ok("GET", "/promptrun/v1/traces")
    assert listed["total"] == 2
    slow = await api.ok("GET", "/promptrun/v1/traces?min_duration_ms=1000")
    assert [t["name"] for t in slow["items"]] == ["slow"]
    assert (await api.ok("GET", "/promptrun/v1/traces?service=api"))["items"][0]["name"] == "fast"
    assert (await api.ok("GET", "/promptrun/v1/traces?has_error=true"))["total"] == 0
    first = min(t["id"] for t in listed["items"])
    after = await api.ok("GET", f"/promptrun/v1/traces?after_id={first}")
    assert [t["id"] for t in after["items"]] == [max(t["id"] for t in listed["items"])]
    for query, words in (
        ("since=soon", "is not a number"),
        ("min_duration_ms=-1", "must be a number from 0 up"),
        ("max_duration_ms=nan", "must be a number from 0 up"),
        ("has_error=maybe", "must be true or false"),
        ("limit=0", "must be between 1 and 1000"),
    ):
        status, answer = await api.call("GET", f"/promptrun/v1/traces?{query}")
        assert status == 400, query
        assert words in answer["message"]
    status, answer = await api.call("GET", "/promptrun/v1/traces/" + "ab" * 16)
    assert status == 404
    assert "not found in this workspace" in answer["message"]


def test_the_backlog_refuses_a_workspace_past_half_and_the_server_past_all() -> None:
    from promptrun.server.routes.otlp import SpanBacklog

    backlog = SpanBacklog(10)
    assert backlog.refusal(1, 50) is None  # nothing waits: even a large batch goes in
    backlog.take(1, 4)
    assert backlog.refusal(1, 2) == 429  # workspace 1 would hold more than half
    assert backlog.refusal(2, 5) is None
    backlog.take(2, 5)
    assert backlog.refusal(3, 2) == 503  # the server would hold more than all
    backlog.give_back(1, 4)
    backlog.give_back(2, 5)
    assert (backlog.pending, backlog.refusal(1, 5)) == (0, None)


def test_answers_match_the_otlp_message_definitions() -> None:
    partial = ExportTraceServiceResponse.FromString(
        otlp.encode_response(otlp.PROTOBUF, 300, "bad ids")
    )
    assert (partial.partial_success.rejected_spans, partial.partial_success.error_message) == (
        300,
        "bad ids",
    )
    assert otlp.encode_response(otlp.PROTOBUF) == b""
    status = Status.FromString(otlp.encode_status(otlp.PROTOBUF, 16, "who are you? é"))
    assert (status.code, status.message) == (16, "who are you? é")
    assert json.loads(otlp.encode_status(otlp.JSON, 3, "x")) == {"code": 3, "message": "x"}


@pytest.fixture
async def busy_api(tmp_path: Any, postgres_url: str) -> Any:
    """A server whose span backlog holds 4 spans, on PostgreSQL (whose tables a test can
    lock from outside, so stores stall on purpose)."""
    from aiohttp.test_utils import TestClient, TestServer

    from promptrun.server.app import ServerConfig, create_app

    config = ServerConfig(
        db_path=tmp_path / "unused.db",
        database_url=postgres_url,
        api_keys=(KEY, f"other:{OTHER_KEY}"),
        generate_key=False,
        sandbox=False,
        max_pending_spans=4,
    )
    app = create_app(config)
    async with (
        TestServer(app, host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Api(client), app


async def test_exports_past_the_backlog_are_told_to_retry_after_a_429_or_a_503(
    busy_api: Any, postgres_url: str
) -> None:
    import asyncio

    import asyncpg

    from promptrun.server.routes.otlp import BACKLOG

    api, app = busy_api
    await post(api, proto_request(proto_span(ROOT)))  # the tables exist, the store is warm
    locker = await asyncpg.connect(postgres_url)
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
        spans = [proto_span(bytes([1, 0, 0, 0, 0, 0, 0, n])) for n in range(1, 4)]
        stalled = asyncio.ensure_future(post(api, proto_request(*spans)))
        # The 3 spans wait for the lock (the server has no event to await for that).
        while app[BACKLOG].pending != 3:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        status, _, answer, headers = await post(api, proto_request(proto_span(CHILD)))
        assert (status, headers["Retry-After"]) == (429, "1")  # this workspace: half is 2
        assert Status.FromString(answer).code == 8
        assert "this workspace has too many spans waiting" in Status.FromString(answer).message
        other = proto_request(proto_span(CHILD), proto_span(bytes.fromhex("0a0b0c0d0e0f0102")))
        status, _, answer, headers = await post(api, other, key=OTHER_KEY)
        assert (status, headers["Retry-After"]) == (503, "1")  # the server: 3 + 2 > 4
        assert Status.FromString(answer).code == 14
        await lock.rollback()
        status, _, _, _ = await stalled
        assert status == 200
    finally:
        await locker.close()
    assert app[BACKLOG].pending == 0
    assert (await post(api, proto_request(proto_span(CHILD))))[0] == 200  # room again
    assert (await trace(api))["span_count"] == 5


def test_without_the_otlp_extra_protobuf_is_refused_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if opentelemetry-proto were not installed: importing it fails.
    monkeypatch.setitem(
        sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None
    )
    with pytest.raises(otlp.ProtobufUnavailable, match=r"pip install 'promptrun\[otlp\]'"):
        otlp.decode_request(proto_request(proto_span(ROOT)), otlp.PROTOBUF)
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + TRACE.hex().encode()
    body += b'", "spanId": "' + ROOT.hex().encode() + b'"}]}]}]}'
    assert len(otlp.decode_request(body, otlp.JSON).spans) == 1  # JSON needs nothing more
