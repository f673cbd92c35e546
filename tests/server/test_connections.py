"""Connections that never finish a request, stall a body or idle on keep-alive are closed, and
a flood of them cannot lock other clients out or use up the server's file descriptors."""

from __future__ import annotations

import http.client
import json
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptrun.testing import RunningServer, ServerProcess, running_server

SHORT = {"header_timeout": 0.5, "body_timeout": 0.5, "keepalive_timeout": 0.5}
PARTIAL = b"GET /health HTTP/1.1\r\nHost: x\r\n"  # the blank line that ends headers never comes


def _open(srv_url: str) -> socket.socket:
    host, port = srv_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def _health(base_url: str) -> int:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def srv() -> Iterator[RunningServer]:
    with running_server(sandbox=True, max_connections=6, **SHORT) as srv:
        yield srv


def test_a_request_whose_headers_never_end_is_answered_408_and_closed(srv: RunningServer) -> None:
    with _open(srv.base_url) as sock:
        sock.sendall(PARTIAL)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_trickling_header_bytes_does_not_keep_a_connection_open(srv: RunningServer) -> None:
    closed = False
    with _open(srv.base_url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        for _ in range(200):  # far longer than the header timeout, were it extended
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable and not _read_until_closed(sock).startswith(b"HTTP/1.1 200"):
                closed = True
                break
    assert closed


def test_a_body_that_never_arrives_is_answered_408_naming_the_option(srv: RunningServer) -> None:
    with _open(srv.base_url) as sock:
        sock.sendall(
            b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-API-KEY: {srv.api_key}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"function_name": '
        )
        answer = _read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert "--body-timeout" in json.loads(body)["message"]


def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(srv: RunningServer) -> None:
    with _open(srv.base_url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _read_until_closed(sock)  # one answer, then the server closes it when idle
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.count(b"HTTP/1.1") == 1


def test_at_the_cap_a_new_client_takes_the_place_of_the_longest_stalled_one(
    tmp_path: Path,
) -> None:
    slow = {"header_timeout": 60.0, "body_timeout": 60.0, "keepalive_timeout": 60.0}
    with running_server(max_connections=3, **slow) as srv:
        stalled = [_open(srv.base_url) for _ in range(3)]
        for sock in stalled:
            sock.sendall(PARTIAL)
            time.sleep(0.01)  # an order of arrival for the server to see
        try:
            assert _health(srv.base_url) == 200
            # The first one stalled is the one that made room.
            assert _read_until_closed(stalled[0]) == b""
        finally:
            for sock in stalled:
                sock.close()


def _streaming(srv: RunningServer) -> socket.socket:
    """A streamed chat completion whose answer has begun: its handler is running."""
    sock = _open(srv.base_url)
    body = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    sock.sendall(
        b"POST /sandbox/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer k\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    if not sock.recv(65536).startswith(b"HTTP/1.1 200 "):
        sock.close()
        raise AssertionError("the stream did not start")
    return sock


def test_when_every_connection_is_busy_a_new_one_is_refused_until_one_frees(
    tmp_path: Path,
) -> None:
    with running_server(sandbox=True, max_connections=2, **SHORT) as srv:
        control = http.client.HTTPConnection(*srv.base_url[7:].split(":"), timeout=30)
        control.request(
            "POST", "/sandbox/_control", '{"chunk_delay_ms": 10000, "chunks": 3}',
            {"X-API-KEY": srv.api_key, "Content-Type": "application/json"},
        )  # fmt: skip
        assert control.getresponse().status == 200
        control.close()
        busy = [_streaming(srv), _streaming(srv)]
        try:
            with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
                _health(srv.base_url)
        finally:
            busy.pop().close()
        status = None
        for _ in range(200):  # until the server has seen that one go
            try:
                status = _health(srv.base_url)
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                time.sleep(0.02)
        busy.pop().close()
    assert status == 200


FLOOD = 1_100


def test_1100_half_open_connections_do_not_stop_a_server_limited_to_1024_files(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FLOOD + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, FLOOD + 200), hard))
    args = ["--no-sandbox", "--header-timeout", "2", "--keepalive-timeout", "2"]
    with ServerProcess(tmp_path / "flood.db", args=args, max_open_files=1024) as proc:
        flood = []
        try:
            for _ in range(FLOOD):
                sock = _open(proc.base_url)
                sock.sendall(PARTIAL)
                flood.append(sock)
            assert _health(proc.base_url) == 200
            # Every stalled connection is closed by the server in the end (evicted or timed out).
            for sock in flood:
                sock.settimeout(30)
                _read_until_closed(sock)
            assert _health(proc.base_url) == 200
        finally:
            for sock in flood:
                sock.close()
        output = proc.output()
    assert "lowered from 1000 to 832" in output
    assert "Too many open files" not in output
