"""The Bedrock and Vertex sandboxes at the wire: AWS event-stream framing as botocore reads
it, SigV4-shaped signatures required, tool calls in Converse's shape, a Vertex token endpoint,
and Vertex's bearer requirement."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from promptrun.server.sandbox._bedrock import event_frame

from ._harness import Sandbox

pytestmark = pytest.mark.anyio

TOOL: Any = {
    "toolSpec": {
        "name": "book_berth",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"nights": {"type": "integer"}},
                "required": ["nights"],
            }
        },
    }
}


def test_an_event_frame_is_what_botocores_event_stream_parser_reads() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event_frame("contentBlockDelta", {"delta": {"text": "hé"}}))
    buffer.add_data(event_frame("messageStop", {"stopReason": "end_turn"}))
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["contentBlockDelta", "messageStop"]
    assert json.loads(messages[0].payload) == {"delta": {"text": "hé"}}
    assert messages[1].headers[":message-type"] == "event"


def bedrock(sandbox: Sandbox) -> Any:
    return boto3.session.Session(
        aws_access_key_id="AKIASANDBOXEXAMPLE01", aws_secret_access_key="fake"
    ).client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"{sandbox.url}/bedrock",
        config=Config(retries={"total_max_attempts": 1}),
    )


async def test_boto3_converse_stream_with_a_tool_reads_every_event_the_sandbox_sends(
    sandbox: Sandbox,
) -> None:
    import anyio

    def run() -> list[dict[str, Any]]:
        response = bedrock(sandbox).converse_stream(
            modelId="anthropic.claude-3-5-haiku-20241022-v1:0",
            messages=[{"role": "user", "content": [{"text": "use the tool please"}]}],
            toolConfig={"tools": [TOOL]},
        )
        return list(response["stream"])

    events = await anyio.to_thread.run_sync(run)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    start = events[1]["contentBlockStart"]["start"]["toolUse"]
    assert start["name"] == "book_berth"
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e
    )
    assert json.loads(arguments) == {"nights": 1}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


async def test_bedrock_refuses_a_request_without_a_sigv4_signature(sandbox: Sandbox) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    for headers in ({}, {"Authorization": "AWS4-HMAC-SHA256 Credential=nonsense"}):
        status, answer, response_headers = await sandbox.post(
            "/bedrock/model/m/converse", body, headers
        )
        assert status == 403
        assert response_headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
        assert "SigV4" in answer["message"] or "Authentication" in answer["message"]


async def test_a_throttled_converse_is_botocores_throttling_error(sandbox: Sandbox) -> None:
    import anyio

    await sandbox.control(fail=[{"status": 429}])

    def run() -> None:
        bedrock(sandbox).converse(
            modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )

    with pytest.raises(ClientError) as caught:
        await anyio.to_thread.run_sync(run)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"


async def test_the_vertex_token_endpoint_grants_tokens_and_vertex_wants_one(
    sandbox: Sandbox,
) -> None:
    async with sandbox.http.post(
        f"{sandbox.url}/vertex/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
    ) as response:
        token = await response.json()
    assert response.status == 200 and token["access_token"] and token["expires_in"] > 0
    path = "/vertex/v1/projects/p/locations/us-central1/publishers/google/models/g:generateContent"
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    status, _, _ = await sandbox.post(path, body)
    assert status == 401
    status, answer, _ = await sandbox.post(
        path, body, {"Authorization": f"Bearer {token['access_token']}"}
    )
    assert status == 200
    assert answer["candidates"][0]["content"]["parts"][0]["text"].startswith("Sandbox reply")
