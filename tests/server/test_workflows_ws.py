"""The websocket at /connection/websocket: tokens, subscriptions, pushes, pings."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anyio
import pytest

from promptrun.server.routes.workflows import WORKFLOWS
from promptrun.server.ws import HUB

from ._api import KEY, OTHER_KEY, Api

pytestmark = pytest.mark.anyio

ANSWER = {"nodes": [{"name": "out", "type": "value", "configuration": {"value": "hello"},
                     "is_output_node": True}]}  # fmt: skip


async def workflow_id(api: Api, definition: dict[str, Any] = ANSWER, key: str = KEY) -> int:
    status, got = await api.call(
        "POST", "/rest/workflows", {"workflow_name": "w", "definition": definition}, key=key
    )
    assert status == 201, got
    return int(got["workflow"]["id"])


async def token(api: Api, channel: str, key: str = KEY) -> str:
    status, got = await api.call("POST", f"/ws-token-request-library?capability={channel}", key=key)
    assert status == 201, got
    assert got["token_details"]["capability"] == channel
    return str(got["token_details"]["token"])


async def receive(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    with anyio.fail_after(5):
        message = await ws.receive()
    if message.type is not aiohttp.WSMsgType.TEXT:
        return [message]
    return [json.loads(line) for line in message.data.split("\n") if line.strip()]


async def command(ws: aiohttp.ClientWebSocketResponse, body: dict[str, Any]) -> Any:
    await ws.send_str(json.dumps(body))
    while True:
        for reply in await receive(ws):
            if isinstance(reply, dict) and reply.get("id") == body["id"]:
                return reply


async def test_connect_subscribe_run_and_receive_the_completion_push(api: Api) -> None:
    wid = await workflow_id(api)
    channel = f"workflows:{wid}:run:abc123"
    async with api.client.ws_connect("/connection/websocket") as ws:
        connected = await command(
            ws, {"id": 1, "connect": {"token": await token(api, channel), "name": "t"}}
        )
        assert set(connected["connect"]) >= {"client", "version", "ping", "pong"}
        assert connected["connect"]["pong"] is True
        assert await command(ws, {"id": 2, "subscribe": {"channel": channel}}) == {
            "id": 2,
            "subscribe": {},
        }
        status, started = await api.call(
            "POST", f"/workflows/{wid}/run",
            {"input_variables": {}, "metadata": None, "workflow_label_name": None,
             "workflow_version_number": None, "return_all_outputs": False,
             "channel_name_suffix": "abc123"},
        )  # fmt: skip
        assert status == 201
        (push,) = await receive(ws)
        data = push["push"]["pub"]["data"]
        assert push["push"]["channel"] == channel
        assert data["message_name"] == "SET_WORKFLOW_COMPLETE"
        assert json.loads(data["data"]) == {
            "workflow_version_execution_id": started["workflow_version_execution_id"],
            "result_code": "OK",
            "final_output": "hello",
        }
        assert await command(ws, {"id": 3, "unsubscribe": {"channel": channel}}) == {
            "id": 3,
            "unsubscribe": {},
        }


async def test_a_result_ready_before_the_subscription_waits_for_it(api: Api) -> None:
    wid = await workflow_id(api)
    channel = f"workflows:{wid}:run:early"
    status, started = await api.call(
        "POST", f"/workflows/{wid}/run", {"channel_name_suffix": "early"}
    )
    assert status == 201
    path = f"/promptrun/v1/workflow-executions/{started['workflow_version_execution_id']}"
    with anyio.fail_after(5):
        while True:
            if (await api.ok("GET", path))["status"] != "RUNNING":
                break
            await anyio.sleep(0.01)
    async with api.client.ws_connect("/connection/websocket") as ws:
        await command(ws, {"id": 1, "connect": {"token": await token(api, channel)}})
        # subscribe without waiting, as the peer does: the ack comes first, then the push
        await ws.send_str(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        replies: list[Any] = []
        while len(replies) < 2:
            replies += await receive(ws)
        assert replies[0] == {"id": 2, "subscribe": {}}
        assert json.loads(replies[1]["push"]["pub"]["data"]["data"])["final_output"] == "hello"


async def test_a_token_allows_only_its_own_channel(api: Api) -> None:
    wid = await workflow_id(api)
    async with api.client.ws_connect("/connection/websocket") as ws:
        await command(
            ws, {"id": 1, "connect": {"token": await token(api, f"workflows:{wid}:run:mine")}}
        )
        refused = await command(
            ws, {"id": 2, "subscribe": {"channel": f"workflows:{wid}:run:other"}}
        )
        assert refused == {"id": 2, "error": {"code": 103, "message": "permission denied"}}
        published = await command(
            ws, {"id": 3, "publish": {"channel": f"workflows:{wid}:run:mine", "data": {}}}
        )
        assert published["error"]["code"] == 103


async def test_a_token_is_only_issued_for_a_workflow_run_channel_of_the_workspace(api: Api) -> None:
    wid = await workflow_id(api)
    for capability in ("", "workflows:*", f"workflows:{wid}:run:", "other:1:run:x"):
        status, _ = await api.call("POST", f"/ws-token-request-library?capability={capability}")
        assert status == 400, capability
    status, _ = await api.call(
        "POST", f"/ws-token-request-library?capability=workflows:{wid}:run:x", key=OTHER_KEY
    )
    assert status == 404


async def test_a_forged_token_is_disconnected_and_an_expired_one_refused(api: Api) -> None:
    wid = await workflow_id(api)
    real = await token(api, f"workflows:{wid}:run:x")
    head, _, _ = real.partition(".")
    async with api.client.ws_connect("/connection/websocket") as ws:
        await ws.send_str(json.dumps({"id": 1, "connect": {"token": head + ".AAAA"}}))
        (closed,) = await receive(ws)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert (closed.data, closed.extra) == (3500, "invalid token")
    hub = api.client.server.app[HUB]
    expired, _ = hub.signer.issue(1, f"workflows:{wid}:run:x", ttl=-1)
    async with api.client.ws_connect("/connection/websocket") as ws:
        reply = await command(ws, {"id": 1, "connect": {"token": expired}})
        assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}


async def test_commands_before_connect_or_malformed_frames_close_the_connection(api: Api) -> None:
    for frame in (
        '{"id": 1, "subscribe": {"channel": "x"}}',
        "not json",
        '{"id": 0, "connect": {}}',
    ):
        async with api.client.ws_connect("/connection/websocket") as ws:
            await ws.send_str(frame)
            (closed,) = await receive(ws)
            assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 3501), frame


async def test_the_server_pings_and_drops_a_client_that_never_pongs(api: Api) -> None:
    settings = api.client.server.app[HUB].settings
    settings.ping_interval, settings.ping_grace = 0.2, 0.2
    wid = await workflow_id(api)
    async with api.client.ws_connect("/connection/websocket") as ws:
        reply = await command(
            ws, {"id": 1, "connect": {"token": await token(api, f"workflows:{wid}:run:p")}}
        )
        assert reply["connect"]["ping"] == 0.2
        assert await receive(ws) == [{}]  # a ping; we do not answer
        seen: list[Any] = []
        while not seen or isinstance(seen[-1], dict):
            seen += await receive(ws)
        assert (seen[-1].type, seen[-1].data, seen[-1].extra) == (
            aiohttp.WSMsgType.CLOSE,
            3012,
            "no pong",
        )


async def test_a_client_that_pongs_stays_connected(api: Api) -> None:
    settings = api.client.server.app[HUB].settings
    settings.ping_interval, settings.ping_grace = 0.1, 0.1
    wid = await workflow_id(api)
    async with api.client.ws_connect("/connection/websocket") as ws:
        await command(
            ws, {"id": 1, "connect": {"token": await token(api, f"workflows:{wid}:run:p")}}
        )
        for _ in range(5):
            assert await receive(ws) == [{}]
            await ws.send_str("{}")
        assert not ws.closed


async def test_a_result_over_the_push_limit_is_announced_and_served_by_rest(api: Api) -> None:
    api.client.server.app[WORKFLOWS].settings.push_limit = 100
    wid = await workflow_id(api, {"nodes": [{"name": "out", "type": "value",
                                             "configuration": {"value": "y" * 500}, "is_output_node": True}]})  # fmt: skip
    channel = f"workflows:{wid}:run:big"
    async with api.client.ws_connect("/connection/websocket") as ws:
        await command(ws, {"id": 1, "connect": {"token": await token(api, channel)}})
        await command(ws, {"id": 2, "subscribe": {"channel": channel}})
        _, started = await api.call("POST", f"/workflows/{wid}/run", {"channel_name_suffix": "big"})
        (push,) = await receive(ws)
    inner = json.loads(push["push"]["pub"]["data"]["data"])
    execution_id = started["workflow_version_execution_id"]
    assert inner == {
        "workflow_version_execution_id": execution_id,
        "result_code": "EXCEEDS_SIZE_LIMIT",
        "final_output": None,
    }
    got = await api.ok(
        "GET",
        f"/workflow-version-execution-results?workflow_version_execution_id={execution_id}&return_all_outputs=false",
    )
    assert got == "y" * 500


SLOW_CODE = {"nodes": [{"name": "nap", "type": "code",
                        "configuration": {"code": "import time\ntime.sleep(0.6)\nreturn 'rested'"},
                        "is_output_node": True}]}  # fmt: skip


async def test_our_client_answers_pings_through_a_long_run(api: Api, tmp_path: Any) -> None:
    from promptrun import AsyncPromptLayer
    from promptrun._run_workflow import run_workflow

    settings = api.client.server.app[HUB].settings
    settings.ping_interval, settings.ping_grace = 0.1, 0.1
    wid = await workflow_id(api, SLOW_CODE)
    base = str(api.client.server.make_url("")).rstrip("/")
    async with AsyncPromptLayer(api_key=KEY, base_url=base, spool_dir=tmp_path) as pl:
        assert await run_workflow(pl, wid) == "rested"  # silent for 0.2 s would have been dropped


async def test_our_client_polls_for_the_result_when_the_websocket_drops(
    api: Api, tmp_path: Any
) -> None:
    from promptrun import AsyncPromptLayer
    from promptrun._run_workflow import run_workflow

    hub = api.client.server.app[HUB]
    wid = await workflow_id(api, SLOW_CODE)
    base = str(api.client.server.make_url("")).rstrip("/")

    async def drop_the_socket() -> None:
        with anyio.fail_after(5):
            while True:
                connections = [c for conns in hub._subscribers.values() for c in conns]
                if connections:
                    break
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)
        await connections[0].ws.close()

    async with (
        AsyncPromptLayer(api_key=KEY, base_url=base, spool_dir=tmp_path) as pl,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(drop_the_socket)
        assert await run_workflow(pl, wid) == "rested"
