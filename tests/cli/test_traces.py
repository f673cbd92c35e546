"""``promptrun traces``: list, filter, follow, and show one trace as a tree."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from promptrun._spantree import span_tree
from promptrun.testing import RunningServer, running_server

from .conftest import Cli, ctrl_c_works

START = 1_700_000_000_000_000_000


def export(served: RunningServer, service: str, spans: list[dict[str, Any]]) -> str:
    """Send spans as OTLP/JSON, one trace; its id."""
    trace_id = secrets.token_hex(16)
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"spans": [{"traceId": trace_id, **s} for s in spans]}],
            }
        ]
    }
    request = urllib.request.Request(
        served.base_url + "/v1/traces",
        data=json.dumps(body).encode(),
        headers={"X-Api-Key": served.api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {}
    return trace_id


def span(
    span_id: str, name: str, parent: str = "", start_ms: int = 0, ms: int = 10, **extra: Any
) -> dict[str, Any]:
    return {
        "spanId": span_id.rjust(16, "0"),
        "parentSpanId": parent.rjust(16, "0") if parent else "",
        "name": name,
        "startTimeUnixNano": START + start_ms * 1_000_000,
        "endTimeUnixNano": START + (start_ms + ms) * 1_000_000,
        **extra,
    }


def test_traces_lists_filters_and_shows_one_as_a_tree(cli: Cli, served: RunningServer) -> None:
    service = f"svc-{secrets.token_hex(3)}"
    trace_id = export(
        served,
        service,
        [
            span("1", "handle order", ms=100, kind=2),
            span("2", "load cart", "1", start_ms=5, ms=20),
            span("3", "query db", "2", start_ms=6, ms=10),
            span("4", "charge", "1", start_ms=30, ms=60, status={"code": 2, "message": "declined"}),
        ],
    )
    export(served, service, [span("1", "healthy", ms=1)])
    listed = cli("traces", "--service", service)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(trace_id)  # oldest start first
    assert f"handle order  [{service}]  4 spans  100.0ms  UNSET (1 failed span)" in lines[0]
    errors = cli("traces", "--service", service, "--errors", "--json")
    (item,) = [json.loads(line) for line in errors.stdout.splitlines()]
    assert (item["trace_id"], item["error_count"]) == (trace_id, 1)
    shown = cli("traces", "show", trace_id.upper())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == [
        "handle order  [server]  100.0ms  (+0.0ms)",
        "├─ load cart  20.0ms  (+5.0ms)",
        "│  └─ query db  10.0ms  (+6.0ms)",
        "└─ charge  60.0ms  (+30.0ms)  ERROR: declined",
    ]
    as_json = json.loads(cli("traces", "show", trace_id, "--json").stdout)
    assert len(as_json["spans"]) == 4


def test_traces_show_of_an_unknown_trace_fails_with_the_servers_reason(cli: Cli) -> None:
    done = cli("traces", "show", "ab" * 16)
    assert done.returncode == 1
    assert "not found in this workspace" in done.stderr
    assert cli("traces", "--limit", "0").returncode == 2
    assert cli("traces", "--status", "BAD").returncode == 2


def test_traces_follow_prints_traces_as_they_arrive_until_interrupted(
    cli_env: dict[str, str], served: RunningServer
) -> None:
    service = f"follow-{secrets.token_hex(3)}"
    with subprocess.Popen(
        [sys.executable, "-m", "promptrun", "traces", "--follow", "--service", service,
         "--interval", "0.1", "--json"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_works,
    ) as follower:  # fmt: skip
        try:
            time.sleep(1.0)  # let it print the (empty) backlog and start polling
            trace_id = export(served, service, [span("1", "late arrival")])
            assert follower.stdout is not None
            assert json.loads(follower.stdout.readline())["trace_id"] == trace_id
            follower.send_signal(signal.SIGINT)
            _, err = follower.communicate(timeout=30)
            assert follower.returncode == 0, err
        finally:
            follower.kill()


def test_the_tree_puts_orphans_and_cycles_at_the_top_and_loses_no_span() -> None:
    spans = [
        {"span_id": "b", "parent_span_id": "a", "start_time_unix_nano": 2},
        {"span_id": "a", "parent_span_id": None, "start_time_unix_nano": 1},
        {"span_id": "o", "parent_span_id": "not-arrived", "start_time_unix_nano": 0},
        {"span_id": "x", "parent_span_id": "y", "start_time_unix_nano": 5},
        {"span_id": "y", "parent_span_id": "x", "start_time_unix_nano": 6},
        {"span_id": "s", "parent_span_id": "s", "start_time_unix_nano": 7},
    ]
    rows = span_tree(spans)
    assert [(r.span["span_id"], r.depth) for r in rows] == [
        ("o", 0), ("a", 0), ("b", 1), ("s", 0), ("x", 0), ("y", 0),
    ]  # fmt: skip
    deep = [{"span_id": i, "parent_span_id": i - 1 if i else None} for i in range(5000)]
    assert [r.depth for r in span_tree(deep)] == list(range(5000))


def test_traces_says_there_are_none_and_json_prints_an_empty_list(cli: Cli) -> None:
    with running_server(sandbox=False) as empty:
        where = ("--base-url", empty.base_url, "--api-key", empty.api_key)
        plain = cli("traces", *where)
        as_json = cli("traces", "--json", *where)
        filtered = cli("traces", "--service", "nothing", *where)
    assert (plain.returncode, plain.stdout, plain.stderr.strip()) == (0, "", "no traces yet")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])
    assert filtered.stderr.strip() == "no traces match these filters"
