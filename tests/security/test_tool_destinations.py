"""Red team: tool nodes try to make the server call what only it can reach.

The server resolves tool hosts through a resolver the test controls (``settings.tool_resolver``,
the injectable DNS of tool calls), so a name can point at loopback, or answer a public address
to the check and loopback afterwards (DNS rebinding). A tool server on loopback records every
request it gets: the attacks succeed only if it hears from them.
"""

from __future__ import annotations

import functools
import gzip
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.routes.workflows import WORKFLOWS
from promptrun.workflows.nodes.tool import MAX_TOOL_RESPONSE

from ..server._api import KEY, Api
from ..server.test_workflows import finished, publish, start

pytestmark = pytest.mark.anyio

PUBLIC = "192.88.99.1"  # a global address (nothing answers there); never the loopback tool


class StubResolver(AbstractResolver):
    """Answers from a table; a list of answers per name is used one call after another."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        answers = self.table[host]
        addresses = answers[min(len(self.calls_for(host)), len(answers)) - 1]
        return [
            ResolveResult(hostname=host, host=a, port=port, proto=0, flags=0,
                          family=socket.AF_INET6 if ":" in a else socket.AF_INET)
            for a in addresses
        ]  # fmt: skip

    def calls_for(self, host: str) -> list[str]:
        return [c for c in self.calls if c == host]

    async def close(self) -> None:
        pass


@dataclass
class Tool:
    """A loopback HTTP tool that records what reaches it."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b"0" * (64 * MAX_TOOL_RESPONSE), compresslevel=1)


@pytest.fixture
async def tool() -> AsyncIterator[Tool]:
    record = Tool(0)
    # Made before the server starts, off its loop: compressing it there would stall the very
    # server whose other answers the tests wait for.
    bomb = await anyio.to_thread.run_sync(_bomb)

    async def handler(request: web.Request) -> web.StreamResponse:
        record.seen.append({"path": request.path, "headers": dict(request.headers)})
        if request.path == "/redirect":
            raise web.HTTPFound("/secret")
        if request.path == "/big":
            return web.Response(body=b"x" * (MAX_TOOL_RESPONSE + 10))
        if request.path == "/bomb":
            return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})
        response = web.json_response({"ok": True})
        response.set_cookie("session", "tool-cookie")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        record.port = server.port or 0
        yield record


async def _server(
    tmp_path: Path, tool_urls: tuple[str, ...], resolver: StubResolver
) -> AsyncIterator[Api]:
    config = ServerConfig(
        db_path=tmp_path / "p.db", api_keys=(KEY,), generate_key=False, sandbox=False,
        tool_urls=tool_urls,
    )  # fmt: skip
    app = create_app(config)
    app[WORKFLOWS].settings.tool_resolver = resolver
    async with TestServer(app, host="127.0.0.1", port=0) as server, TestClient(server) as client:
        yield Api(client)


async def _call(api: Api, *urls: str, headers: dict[str, str] | None = None) -> list[Any]:
    nodes = [
        {"name": f"t{i}", "type": "tool",
         "configuration": {"url": url, "timeout": 30, "headers": headers or {}}}
        for i, url in enumerate(urls)
    ]  # fmt: skip
    await publish(api, "calls", {"nodes": nodes})
    execution = await finished(api, await start(api, "calls"))
    return execution["nodes"]  # type: ignore[no-any-return]


async def test_a_name_that_resolves_to_loopback_is_refused_though_its_text_looks_public(
    tmp_path: Path, tool: Tool
) -> None:
    resolver = StubResolver({"127.attacker.example": [["127.0.0.1"]],
                             "mixed.attacker.example": [[PUBLIC, "10.0.0.7"]]})  # fmt: skip
    async for api in _server(tmp_path, ("*",), resolver):
        loop, mixed = await _call(
            api,
            f"http://127.attacker.example:{tool.port}/tool",
            f"http://mixed.attacker.example:{tool.port}/tool",
        )
    assert loop["status"] == "FAILED"
    assert loop["error_message"].endswith(
        "this server does not call 127.attacker.example: it resolves to 127.0.0.1, a loopback "
        "address; only public addresses are allowed unless a --tool-url entry names the host"
    )
    assert "it resolves to 10.0.0.7, a private address" in mixed["error_message"]
    assert tool.seen == []


async def test_dns_rebinding_finds_the_connection_already_made_to_the_checked_address(
    tmp_path: Path, tool: Tool
) -> None:
    # Public to the check, loopback to any later question: with one lookup, there is none.
    resolver = StubResolver({"rebind.attacker.example": [[PUBLIC], ["127.0.0.1"]]})
    async for api in _server(tmp_path, ("*",), resolver):
        (node,) = await _call(api, f"http://rebind.attacker.example:{tool.port}/tool")
    assert node["status"] == "FAILED"  # nothing answers at the public address
    assert resolver.calls_for("rebind.attacker.example") == ["rebind.attacker.example"]
    assert tool.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/tool",
        "http://[::ffff:127.0.0.1]:{port}/tool",
        "http://[::1]:{port}/tool",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://0.0.0.0:{port}/tool",
    ],
)
async def test_internal_addresses_written_as_addresses_are_refused(
    tmp_path: Path, tool: Tool, url: str
) -> None:
    async for api in _server(tmp_path, ("*",), StubResolver({})):
        (node,) = await _call(api, url.format(port=tool.port))
    assert node["status"] == "FAILED"
    assert "only public addresses are allowed" in node["error_message"]
    assert tool.seen == []


async def test_the_allow_list_compares_parsed_hosts_not_text(tmp_path: Path, tool: Tool) -> None:
    allowed = f"http://tools.example.test:{tool.port}"
    resolver = StubResolver({"tools.example.test": [["127.0.0.1"]],
                             "tools.example.test.evil.net": [["127.0.0.1"]]})  # fmt: skip
    async for api in _server(tmp_path, (allowed,), resolver):
        userinfo, suffix, fine = await _call(
            api,
            f"http://tools.example.test:{tool.port}@127.0.0.1:{tool.port}/tool",
            f"http://tools.example.test.evil.net:{tool.port}/tool",
            f"{allowed}/tool",
        )
    assert "may not carry a user name or password" in userinfo["error_message"]
    assert "must match a --tool-url entry" in suffix["error_message"]
    # A host the operator named may resolve where it likes; the Host header keeps the name.
    assert fine["status"] == "SUCCESS", fine
    assert [s["headers"]["Host"] for s in tool.seen] == [f"tools.example.test:{tool.port}"]


async def test_no_redirects_no_cookies_no_proxy_and_bounded_answers(
    tmp_path: Path, tool: Tool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{tool.port}/proxy")
    base = f"http://127.0.0.1:{tool.port}"
    async for api in _server(tmp_path, (base,), StubResolver({})):
        first, second, redirect, big, bomb = await _call(
            api, f"{base}/one", f"{base}/two", f"{base}/redirect", f"{base}/big", f"{base}/bomb"
        )
        (host,) = await _call(api, f"{base}/x", headers={"Host": "internal.example"})
    assert (first["status"], second["status"]) == ("SUCCESS", "SUCCESS")
    assert "Cookie" not in str([s["headers"] for s in tool.seen])  # its cookie never came back
    assert not [s for s in tool.seen if s["path"] == "/proxy"]
    assert (
        "answered HTTP 302 (a redirect to '/secret'); tool calls do not follow"
        in (redirect["error_message"])
    )
    assert not [s for s in tool.seen if s["path"] == "/secret"]
    assert f"answered more than {MAX_TOOL_RESPONSE} bytes" in big["error_message"]
    assert f"answered more than {MAX_TOOL_RESPONSE} bytes" in bomb["error_message"]
    assert "may not set the Host header" in host["error_message"]
    assert all(s["headers"].get("Accept-Encoding") == "identity" for s in tool.seen)


@pytest.mark.parametrize(
    "tail",
    [
        "/apix",
        "/api/../admin",
        "/api/%2e%2e/admin",
        "/api/%2E%2e/admin",
        "/api/.%2e/admin",
        "/api/..%2fadmin",
        "/api%2f..%2fadmin",
        "/api/%2fadmin",
        "/api/%252e%252e/admin",
        "/API/x",
    ],
)
async def test_a_tool_url_outside_the_allowed_path_is_refused_however_it_is_spelled(
    tmp_path: Path, tool: Tool, tail: str
) -> None:
    base = f"http://127.0.0.1:{tool.port}"
    async for api in _server(tmp_path, (f"{base}/api",), StubResolver({})):
        (node,) = await _call(api, f"{base}{tail}")
    assert node["status"] == "FAILED"
    message = node["error_message"]
    assert "this server does not call" in message or "write the path plainly" in message
    assert tool.seen == []


@pytest.mark.parametrize(
    ("tail", "path"),
    [
        ("/api", "/api"),
        ("/api/up", "/api/up"),
        ("/api/x/../up", "/api/up"),
        ("/api/./up", "/api/up"),
        ("/api/caf%C3%A9", "/api/café"),
    ],
)
async def test_a_tool_call_inside_the_allowed_path_goes_to_the_path_that_was_checked(
    tmp_path: Path, tool: Tool, tail: str, path: str
) -> None:
    base = f"http://127.0.0.1:{tool.port}"
    async for api in _server(tmp_path, (f"{base}/api",), StubResolver({})):
        (node,) = await _call(api, f"{base}{tail}")
    assert node["status"] == "SUCCESS", node["error_message"]
    assert [s["path"] for s in tool.seen] == [path]


async def test_an_upper_case_scheme_and_host_are_the_same_url(tmp_path: Path, tool: Tool) -> None:
    async for api in _server(tmp_path, (f"HTTP://127.0.0.1:{tool.port}/api",), StubResolver({})):
        (node,) = await _call(api, f"HTTP://127.0.0.1:{tool.port}/api/up")
    assert node["status"] == "SUCCESS", node["error_message"]
    assert [s["path"] for s in tool.seen] == ["/api/up"]
