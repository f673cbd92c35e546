"""Requests refused at the HTTP level (by aiohttp's parser, the body limits, content codings,
``Expect``) are answered in the server's JSON error shape, saying what to do, and echo
nothing of the request back."""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from promptrun.testing import RunningServer, ServerProcess, running_server

from ._api import log_body, track_body

BODY_LIMIT = 64 * 1024
RECORD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def srv() -> Iterator[RunningServer]:
    with running_server(
        sandbox=False,
        max_body_bytes=BODY_LIMIT,
        max_record_bytes=RECORD_LIMIT,
        header_timeout=0.5,
        body_timeout=5.0,
    ) as srv:
        yield srv


class _Server(Protocol):
    base_url: str
    api_key: str


def _exchange(srv: _Server, raw: bytes, *, until_closed: bool = True) -> bytes:
    host, port = srv.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(raw)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
                if not until_closed and b"\r\n\r\n" in got:
                    head, _, rest = got.partition(b"\r\n\r\n")
                    length = _content_length(head)
                    if length is not None and len(rest) >= length:
                        break
        except ConnectionResetError:
            pass
    return got


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


def _answer(got: bytes) -> tuple[int, bytes, Any]:
    """(status, head, JSON body) of the first answer in ``got``."""
    head, _, rest = got.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    length = _content_length(head)
    assert length is not None, head
    assert b"content-type: application/json" in head.lower(), got[:300]
    return status, head, json.loads(rest[:length])


def _post(srv: _Server, path: str, body: bytes, *, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"X-API-KEY: {srv.api_key}",
             "Content-Type: application/json", f"Content-Length: {len(body)}", "Connection: close"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return _exchange(srv, "\r\n".join(lines).encode() + b"\r\n\r\n" + body)


def test_an_over_long_request_line_is_a_json_400_that_does_not_echo_the_path(
    srv: RunningServer,
) -> None:
    got = _exchange(srv, b"POST /prompt-templates/" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, answer = _answer(got)
    assert status == 400
    assert answer["success"] is False
    assert "longer than 8190 bytes" in answer["message"]
    assert "xxxx" not in answer["message"] and "bytearray" not in answer["message"]


def test_a_refused_request_is_one_debug_line_in_the_log_not_an_error_with_a_traceback(
    srv: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Anyone can send these without a key: as ERRORs with tracebacks they would flood the log.
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    for raw in (
        b"GET /dashboard/requests?q=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nBad\rHeader: 1\r\n\r\n",
    ):
        assert _answer(_exchange(srv, raw))[0] == 400
    mine = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(mine) == 2
    assert all(r.levelno == logging.DEBUG and r.exc_info is None for r in mine)
    assert all("400" in r.getMessage() and "xxxx" not in r.getMessage() for r in mine)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"POST /track-request HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n",
         "longer than 8190 bytes"),
        (b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n{}", "malformed HTTP request"),
        (b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
         b"\r\n{}", "malformed HTTP request"),
        (b"POST /track-request HTTP/1.1\r\nHost: x\r\nBad\rHeader: 1\r\n\r\n", "header"),
    ],
)  # fmt: skip
def test_requests_the_http_parser_refuses_are_json_400s(
    srv: RunningServer, raw: bytes, says: str
) -> None:
    status, _, answer = _answer(_exchange(srv, raw))
    assert status == 400
    assert says in answer["message"]
    assert "yyyy" not in answer["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nX-Token: s3cr3t\rb\r\n\r\n",
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nX-Token: s3cr3t\x00\r\n\r\n",
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nX-Token s3cr3t\r\n\r\n",
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Length: s3cr3t\r\n\r\n",
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: s3cr3t\r\n\r\n",
        b"POST /track-s3cr3t\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\nX-Token: s3cr3t\r\n\r\n{}",
    ],
)
def test_a_request_the_http_parser_refuses_is_not_echoed_in_the_answer(
    srv: RunningServer, raw: bytes
) -> None:
    status, _, answer = _answer(_exchange(srv, raw))
    assert status == 400
    assert answer["message"].startswith(("malformed HTTP request", "a request header", "the "))
    assert "s3cr3t" not in answer["message"]
    assert "b'" not in answer["message"] and "^" not in answer["message"]


def test_a_request_whose_headers_stall_gets_a_json_408_naming_the_option(
    srv: RunningServer,
) -> None:
    status, _, answer = _answer(_exchange(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n"))
    assert status == 408
    assert "--header-timeout" in answer["message"]


def test_a_body_over_the_limit_is_a_413_naming_the_limit_and_how_to_raise_it(
    srv: RunningServer,
) -> None:
    body = json.dumps({"input_variables": {"x": "y" * BODY_LIMIT}}).encode()
    status, _, answer = _answer(_post(srv, "/prompt-templates/greet", body))
    assert status == 413
    assert f"{BODY_LIMIT} bytes" in answer["message"]
    assert "--max-body-bytes (PROMPTRUN_MAX_BODY_BYTES)" in answer["message"]


def test_a_log_record_has_the_larger_record_limit_and_its_413_names_that_option(
    srv: RunningServer,
) -> None:
    text = "x" * (BODY_LIMIT * 2)  # over --max-body-bytes, under --max-record-bytes
    big = log_body(input={"type": "completion", "content": [{"type": "text", "text": text}]})
    status, _, answer = _answer(_post(srv, "/log-request", json.dumps(big).encode()))
    assert status == 201, answer
    text = "x" * RECORD_LIMIT
    bigger = track_body(kwargs={"model": "m", "prompt": text})
    status, _, answer = _answer(_post(srv, "/track-request", json.dumps(bigger).encode()))
    assert status == 413
    assert f"{RECORD_LIMIT} bytes" in answer["message"]
    assert "--max-record-bytes (PROMPTRUN_MAX_RECORD_BYTES)" in answer["message"]


def test_expect_100_continue_over_the_limit_gets_the_413_instead_of_100_continue(
    srv: RunningServer,
) -> None:
    got = _exchange(
        srv,
        b"POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n",
    )
    assert not got.startswith(b"HTTP/1.1 100")
    status, head, answer = _answer(got)
    assert status == 413
    assert f"{RECORD_LIMIT} bytes" in answer["message"]
    assert b"connection: close" in head.lower()


def test_expect_100_continue_within_the_limit_is_invited_and_served(srv: RunningServer) -> None:
    body = json.dumps(track_body()).encode()
    host, port = srv.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            "POST /track-request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-KEY: {srv.api_key}\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    status, _, answer = _answer(got)
    assert status == 200 and answer["request_id"] >= 1


@pytest.mark.parametrize("coding", ["lzma", "gzip, gzip", "compress"])
def test_a_content_encoding_the_server_cannot_decode_is_a_415_listing_the_ones_it_can(
    srv: RunningServer, coding: str
) -> None:
    got = _post(srv, "/track-request", json.dumps(track_body()).encode(),
                headers={"Content-Encoding": coding})  # fmt: skip
    status, _, answer = _answer(got)
    assert status == 415
    assert repr(coding) in answer["message"] and "gzip, deflate" in answer["message"]


def test_identity_and_gzip_bodies_are_still_read(srv: RunningServer) -> None:
    body = json.dumps(track_body()).encode()
    got = _post(srv, "/track-request", body, headers={"Content-Encoding": "identity"})
    assert _answer(got)[0] == 200
    got = _post(srv, "/track-request", gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert _answer(got)[0] == 200


def test_a_bad_gzip_body_is_a_400_in_words_not_the_librarys_repr(srv: RunningServer) -> None:
    got = _post(srv, "/track-request", b"this is not gzip", headers={"Content-Encoding": "gzip"})
    status, _, answer = _answer(got)
    assert status == 400
    assert "is not valid 'gzip' data" in answer["message"]
    assert "\n" not in answer["message"] and "message:" not in answer["message"]


def test_a_too_large_id_says_the_maximum(srv: RunningServer) -> None:
    got = _post(srv, "/promptrun/v1/workflow-executions/99999999999999999999/cancel", b"")
    status, _, answer = _answer(got)
    assert status == 400
    assert "must be a positive integer of at most 9223372036854775807" in answer["message"]


@pytest.mark.parametrize("path", ["/v1/traces", "/track-request"])
def test_a_lone_surrogate_escape_is_named_not_called_truncated(
    srv: RunningServer, path: str
) -> None:
    got = _post(srv, path, b'{"a": "\\ud800"}')
    status, _, answer = _answer(got)
    assert status == 400
    assert "lone UTF-16 surrogate" in answer["message"]
    assert "truncated" not in answer["message"]


def test_an_empty_body_where_fields_are_required_says_it_is_empty(srv: RunningServer) -> None:
    status, _, answer = _answer(_post(srv, "/track-request", b""))
    assert status == 400
    assert answer["message"].startswith("the request body is empty")


def test_by_default_a_log_record_with_a_5_mb_long_context_prompt_is_stored() -> None:
    text = "long context document. " * (5_000_000 // 23)  # 5 MB: over the 4 MiB body limit
    big = log_body(input={"type": "completion", "content": [{"type": "text", "text": text}]})
    with running_server(sandbox=False) as default:
        status, _, answer = _answer(_post(default, "/log-request", json.dumps(big).encode()))
    assert status == 201, answer


def test_the_limits_come_from_the_environment_and_the_options_win(tmp_path: Path) -> None:
    env = {**os.environ, "PROMPTRUN_MAX_RECORD_BYTES": "1000", "PROMPTRUN_MAX_BODY_BYTES": "900"}
    body = json.dumps(track_body(kwargs={"prompt": "x" * 1500})).encode()
    with ServerProcess(tmp_path / "a.db", env=env) as proc:
        status, _, answer = _answer(_post(proc, "/track-request", body))
    assert status == 413
    assert "the limit of this endpoint is 1000 bytes" in answer["message"]
    with ServerProcess(tmp_path / "b.db", env=env, args=["--max-record-bytes", "4000"]) as proc:
        status, _, answer = _answer(_post(proc, "/track-request", body))
    assert status == 200, answer
