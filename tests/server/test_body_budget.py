"""The server holds at most --max-inflight-body-bytes of request bodies at once, counting the
bytes that have arrived (not the declared lengths): a body that cannot grow beside the ones
being read is a 503 with Retry-After, one larger than the whole budget a 413, and every request
gives its share back however it ends."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import socket
from collections.abc import Iterator

import pytest

from promptrun.testing import RunningServer, running_server

SIZE = 256 * 1024  # one "large" body
SLOW = {"header_timeout": 60.0, "body_timeout": 60.0, "keepalive_timeout": 60.0}


def _open(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer read from ``sock`` (status, headers, body), without waiting for close."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


def _head(size: int, extra: str = "") -> bytes:
    return (
        f"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {size}\r\n\r\n"
    ).encode()


_START = b'{"pad": "'
_LEFT = 16  # bytes of a held body not sent until it is finished


def _hold(
    base_url: str, size: int = SIZE, *, key: str | None = None, sent: int | None = None
) -> socket.socket:
    """A /track-request whose body is declared and sent but for its last bytes (``sent``:
    only that many bytes of it)."""
    sent = size - _LEFT if sent is None else sent
    sock = _open(base_url)
    head = _head(size, f"X-API-KEY: {key}\r\n" if key else "")
    sock.sendall(head + (_START + b"a" * size)[:sent])
    return sock


def _finish(sock: socket.socket, size: int = SIZE, sent: int = SIZE - _LEFT) -> int:
    """Send the rest of a held body; the status of the answer."""
    body = _START + b"a" * (size - len(_START) - 2) + b'"}'
    sock.sendall(body[sent:])
    return _answer(sock)[0]


def _post(base_url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(
            "POST",
            "/track-request",
            body=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        text = response.read().decode()
        retry_after = response.getheader("Retry-After") or ""
        return response.status, json.loads(text).get("message", "") + "|" + retry_after
    finally:
        conn.close()


def _large() -> bytes:
    return b'{"pad": "' + b"a" * (SIZE - 11) + b'"}'


def _probe_until(base_url: str, busy: bool) -> tuple[int, str]:
    """Send a large body (no key: a 401 once read) until it is refused for want of room
    (``busy``), or until it is read again; the last answer. Each try is a full round trip, so
    this waits on the server's events, not on a clock."""
    for _ in range(2000):
        status, message = _post(base_url, _large())
        if (status == 503) == busy:
            return status, message
    raise AssertionError(f"the server never answered {'503' if busy else 'other than 503'}")


@pytest.fixture
def srv() -> Iterator[RunningServer]:
    # Room for three large bodies, not four.
    with running_server(max_inflight_body_bytes=3 * SIZE + SIZE // 2, **SLOW) as srv:
        yield srv


def test_the_body_past_the_budget_is_a_503_while_the_held_ones_stay_open_and_are_served(
    srv: RunningServer,
) -> None:
    held = [_hold(srv.base_url) for _ in range(3)]
    try:
        status, message = _probe_until(srv.base_url, busy=True)
        text, _, retry_after = message.partition("|")
        assert status == 503
        assert "busy reading other large request bodies" in text
        assert "--max-inflight-body-bytes" in text
        assert retry_after == "1"
        # The three held bodies were not dropped: each is read and answered (no key: 401).
        assert [_finish(sock) for sock in held] == [401, 401, 401]
    finally:
        for sock in held:
            sock.close()
    assert _probe_until(srv.base_url, busy=False)[0] == 401


def test_small_requests_keep_working_while_large_bodies_fill_the_budget(
    srv: RunningServer,
) -> None:
    held = [_hold(srv.base_url) for _ in range(3)]
    try:
        assert _probe_until(srv.base_url, busy=True)[0] == 503
        record = {
            "function_name": "openai.chat.completions.create",
            "provider_type": "openai",
            "kwargs": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            "request_response": {"choices": []},
            "request_start_time": 1700000000.0,
            "request_end_time": 1700000001.0,
        }
        status, _ = _post(
            srv.base_url, json.dumps(record).encode(), {"X-API-KEY": srv.api_key or ""}
        )
        assert status == 200
    finally:
        for sock in held:
            sock.close()


def test_a_client_that_disconnects_mid_body_gives_its_share_back_and_is_no_server_error(
    srv: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    held = [_hold(srv.base_url) for _ in range(3)]
    try:
        assert _probe_until(srv.base_url, busy=True)[0] == 503
        with caplog.at_level(logging.DEBUG, logger="promptrun.server"):
            held[0].close()  # gone mid-body
            assert _probe_until(srv.base_url, busy=False)[0] == 401
    finally:
        for sock in held:
            sock.close()
    # A client that hangs up is not the server's fault: no ERROR, no "unexpected error".
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert any("closed the connection" in r.getMessage() for r in caplog.records)


def test_a_chunked_body_holds_what_it_has_sent_and_gives_it_back_when_answered(
    srv: RunningServer,
) -> None:
    sock = _open(srv.base_url)
    try:
        sock.sendall(
            b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(3):  # three large bodies' worth, with no declared length
            sock.sendall(f"{SIZE:x}\r\n".encode() + b" " * SIZE + b"\r\n")
        assert _probe_until(srv.base_url, busy=True)[0] == 503
        sock.sendall(b"2\r\n{}\r\n0\r\n\r\n")
        assert _answer(sock)[0] == 401
        assert _probe_until(srv.base_url, busy=False)[0] == 401
    finally:
        sock.close()


def test_a_chunked_body_growing_past_the_whole_budget_is_a_413_naming_both_limits(
    srv: RunningServer,
) -> None:
    with _open(srv.base_url) as sock:
        sock.sendall(
            b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(4):
            sock.sendall(f"{SIZE:x}\r\n".encode() + b" " * SIZE + b"\r\n")
        status, _, body = _answer(sock)
    assert status == 413
    message = json.loads(body)["message"]
    assert "--max-inflight-body-bytes" in message and "--max-record-bytes" in message
    assert _probe_until(srv.base_url, busy=False)[0] == 401


def test_a_declared_length_over_the_whole_budget_is_a_413_naming_both_limits_unread(
    srv: RunningServer,
) -> None:
    with _hold(srv.base_url, 4 * SIZE) as sock:
        status, _, body = _answer(sock)  # answered with most of the body never sent
    assert status == 413
    message = json.loads(body)["message"]
    assert "--max-inflight-body-bytes" in message
    assert "--max-record-bytes" in message
    assert f"{4 * SIZE} bytes" in message


def test_a_wrong_key_in_a_header_is_refused_before_the_body_is_read(
    srv: RunningServer,
) -> None:
    # The body never comes: only a refusal made before reading it can be answered.
    with _hold(srv.base_url, 2 * SIZE, key="pl_not_a_key_of_this_server") as sock:
        status, _, body = _answer(sock)
    assert status == 401
    assert "unknown API key" in json.loads(body)["message"]


def test_a_right_key_in_a_header_still_has_its_body_read(srv: RunningServer) -> None:
    sock = _hold(srv.base_url, key=srv.api_key)
    try:
        assert _finish(sock) == 400  # read, and found not to be a record
    finally:
        sock.close()


def test_a_client_that_expects_100_continue_is_told_503_before_it_uploads_when_full(
    srv: RunningServer,
) -> None:
    held = [_hold(srv.base_url) for _ in range(3)]
    try:
        assert _probe_until(srv.base_url, busy=True)[0] == 503
        with _open(srv.base_url) as sock:
            sock.sendall(_head(SIZE, "Expect: 100-continue\r\n"))
            status, headers, body = _answer(sock)
        assert status == 503  # not "100 Continue"
        assert headers["retry-after"] == "1"
        assert "busy reading other large request bodies" in json.loads(body)["message"]
    finally:
        for sock in held:
            sock.close()


def test_a_compressed_body_counts_by_its_inflated_size(srv: RunningServer) -> None:
    packed = gzip.compress(b'{"pad": "' + b"a" * (4 * SIZE) + b'"}')
    assert len(packed) < SIZE // 4  # small on the wire, four large bodies inflated
    status, message = _post(srv.base_url, packed, {"Content-Encoding": "gzip"})
    assert status == 413
    assert "--max-inflight-body-bytes" in message
    assert _probe_until(srv.base_url, busy=False)[0] == 401


def test_slow_bodies_that_have_sent_little_do_not_keep_out_a_fast_large_body(
    srv: RunningServer,
) -> None:
    # Each declares the whole budget's worth but the three largest bodies together, and has
    # sent a few bytes: a declared length reserves nothing, only bytes that arrived do.
    slow = []
    for _ in range(6):
        sock = _open(srv.base_url)
        sock.sendall(_head(3 * SIZE, "Expect: 100-continue\r\n"))
        status, _, _ = _answer(sock)  # the server has the request and is about to read it
        assert status == 100
        sock.sendall(_START)
        slow.append(sock)
    try:
        for _ in range(5):  # fast large bodies, one after another: each read and answered
            assert _post(srv.base_url, _large())[0] == 401
        # Three fast ones held at once fit too, beside the slow ones.
        held = [_hold(srv.base_url) for _ in range(3)]
        try:
            assert [_finish(sock) for sock in held] == [401, 401, 401]
        finally:
            for sock in held:
                sock.close()
        # The slow bodies are still being read: one finished is answered.
        assert _finish(slow[0], 3 * SIZE, len(_START)) == 401
    finally:
        for sock in slow:
            sock.close()


def test_a_body_that_cannot_grow_is_a_503_that_closes_its_connection_and_gives_its_share_back(
    srv: RunningServer,
) -> None:
    held = [_hold(srv.base_url) for _ in range(3)]
    try:
        assert _probe_until(srv.base_url, busy=True)[0] == 503  # the three are being read
        with _hold(srv.base_url, sent=3 * SIZE // 4) as sock:  # not all of it: no room
            status, headers, body = _answer(sock)
            assert status == 503
            assert headers["retry-after"] == "1"
            assert headers.get("connection", "").lower() == "close"
            assert "busy reading other large request bodies" in json.loads(body)["message"]
        assert [_finish(sock) for sock in held] == [401, 401, 401]
    finally:
        for sock in held:
            sock.close()
    assert _probe_until(srv.base_url, busy=False)[0] == 401
