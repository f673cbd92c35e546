"""A compressed body is inflated only as far as the server reads it: a gzip bomb is a 413 and
its connection is closed, never inflated to the end on the event loop, whatever the route."""

from __future__ import annotations

import contextlib
import socket
import zlib
from collections.abc import Iterator

import pytest

from promptrun.testing import RunningServer, running_server

from ..server.test_connections import _read_until_closed

MIB = 1 << 20


def gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip stream of ``inflated_mib`` MiB of zeros, about 1,000 times smaller (no trailer:
    the server never gets that far)."""
    first = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = first.compress(b"\0" * MIB) + first.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor starts afresh, so every further MiB is the same bytes.
    again = first.compress(b"\0" * MIB) + first.flush(zlib.Z_FULL_FLUSH)
    return head + again * (inflated_mib - 1)


# 300 MB inflated: were the rest inflated after the 413, that would finish in about a second
# and the pipelined request behind the body would be answered.
BOMB = gzip_bomb(300)
PIPELINED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def srv() -> Iterator[RunningServer]:
    with running_server(sandbox=False, max_body_bytes=4 * MIB) as srv:
        yield srv


def _open(srv: RunningServer) -> socket.socket:
    host, port = srv.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def _send_bomb(srv: RunningServer, method: str, path: str) -> bytes:
    """Send the bomb and, behind it on the same connection, a GET /health; everything the
    server answers until it closes the connection."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nX-API-KEY: {srv.api_key}\r\n"
        f"Content-Length: {len(BOMB)}\r\n\r\n"
    ).encode()
    with _open(srv) as sock:
        # The server may close the connection before it takes the whole body: as it should.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + BOMB + PIPELINED)
        return _read_until_closed(sock)


def _health(srv: RunningServer) -> bytes:
    with _open(srv) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _read_until_closed(sock)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/rest/prompt-templates"),
        ("POST", "/v1/traces"),
        ("POST", "/track-request"),
    ],
)
def test_a_gzip_bomb_is_a_413_and_its_connection_is_closed_before_the_rest_is_inflated(
    srv: RunningServer, method: str, path: str
) -> None:
    answer = _send_bomb(srv, method, path)
    assert answer.startswith(b"HTTP/1.1 413 ")
    # The request behind the body is never answered: the server closed the connection
    # instead of inflating the rest of the body to reach it.
    assert answer.count(b"HTTP/1.1 ") == 1
    assert _health(srv).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("POST", "/no-such-endpoint"), ("DELETE", "/rest/prompt-templates")],
)
def test_a_gzip_body_a_route_does_not_read_is_not_inflated_after_the_answer(
    srv: RunningServer, method: str, path: str
) -> None:
    answer = _send_bomb(srv, method, path)
    assert answer.startswith(b"HTTP/1.1 ")
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in answer.split(b"\r\n\r\n")[0]


def test_health_answers_on_another_connection_while_a_gzip_bomb_is_refused(
    srv: RunningServer,
) -> None:
    head = (
        "POST /rest/prompt-templates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(BOMB)}\r\n\r\n"
    ).encode()
    with _open(srv) as bomb:
        bomb.sendall(head + BOMB[: 64 * 1024])
        # The server now holds a connection with most of a bomb still to come; the rest
        # arrives while a health check is made on another connection.
        assert _health(srv).startswith(b"HTTP/1.1 200 ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            bomb.sendall(BOMB[64 * 1024 :] + PIPELINED)
        assert _health(srv).startswith(b"HTTP/1.1 200 ")
        got = _read_until_closed(bomb)
    assert got.startswith(b"HTTP/1.1 413 ")
    assert got.count(b"HTTP/1.1 ") == 1
