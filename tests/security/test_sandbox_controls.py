"""The sandbox providers' control endpoint on a real server: the server's key, JSON only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promptrun.testing import RunningServer, running_server

from ._http import Http

CONTROL = "/sandbox/_control"


@pytest.fixture(scope="module")
def srv() -> Iterator[RunningServer]:
    with running_server(sandbox=True) as srv:
        yield srv


def _latency(srv: RunningServer) -> float:
    snapshot = Http(srv.base_url, srv.api_key).ok("GET", CONTROL)
    return float(snapshot["settings"]["latency_ms"])


def test_a_cross_site_text_plain_post_cannot_slow_the_sandbox_down(srv: RunningServer) -> None:
    # The request a web page can make without a preflight: a form-like text/plain POST.
    answer = Http(srv.base_url).call(
        "POST",
        CONTROL,
        b'{"latency_ms": 3600000}',
        key=None,
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )

    assert answer.status == 401
    assert _latency(srv) == 0


def test_a_key_of_the_server_in_a_header_is_needed_to_read_or_change_the_sandbox(
    srv: RunningServer,
) -> None:
    anonymous = Http(srv.base_url)
    statuses = [
        anonymous.call("GET", CONTROL, key=None).status,
        anonymous.call("DELETE", CONTROL, key=None).status,
        anonymous.call("POST", CONTROL, {"latency_ms": 10}, key="pl_wrong").status,
        # A key in the body, where the PromptLayer endpoints accept one, does not count here.
        anonymous.call(
            "POST", CONTROL, {"latency_ms": 10, "api_key": srv.api_key}, key=None
        ).status,
    ]

    assert statuses == [401, 401, 401, 401]
    assert _latency(srv) == 0


def test_with_the_key_a_json_post_changes_the_sandbox_within_bounds(srv: RunningServer) -> None:
    http = Http(srv.base_url, srv.api_key)
    try:
        changed = http.ok("POST", CONTROL, {"latency_ms": 1})
        too_slow = http.call("POST", CONTROL, {"latency_ms": 3_600_000})
        not_json = http.call(
            "POST", CONTROL, b'{"latency_ms": 2}', headers={"Content-Type": "text/plain"}
        )
    finally:
        http.ok("DELETE", CONTROL)

    assert changed["settings"]["latency_ms"] == 1
    assert too_slow.status == 400
    assert "60000" in too_slow.json()["error"]
    assert not_json.status == 415
