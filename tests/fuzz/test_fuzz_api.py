"""Hostile input on every endpoint: a 4xx JSON error with a message, never a 5xx, and a store
left exactly as it was (except for what a 2xx legitimately wrote).

One server for the module; before and after each generated request, every table's rows are
read. A 2xx may change only the tables its endpoint writes. Set PROMPTRUN_FUZZ_EXAMPLES for
more examples per endpoint, and PROMPTRUN_FUZZ_RANDOM=1 for fresh ones on every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.openapi import OPENAPI
from promptrun.testing import RunningServer, running_server

from ..security import _db
from ..security._http import Answer, Http
from ..security._samples import Seeded, path_for, seed, valid_body
from ._bodies import bodies, path_texts, query_values

CONFIG = {"sandbox": False, "fault_injection": False}
EXAMPLES = int(os.environ.get("PROMPTRUN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("PROMPTRUN_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A stored or tracked request, and what is derived from it (rollups, filter rows, the text
# index: on SQLite filled a moment later, which _check waits for).
_REQUEST_TABLES = {"requests", "request_scores", "request_metadata", "request_groups"} | {
    "request_daily", "request_hourly", "request_prompt_daily", "request_tag_daily",
    "request_tag_hourly", "request_facets", "request_tags", "requests_fts", "requests_fts_data",
    "requests_fts_idx", "requests_fts_docsize", "caught_up",
}  # fmt: skip
# What a 2xx from each endpoint may write; every other table must stay as it was.
WRITES: dict[tuple[str, str], set[str]] = {
    ("POST", "/rest/prompt-templates"): {"prompt_templates", "prompt_versions", "release_labels"},
    ("POST", "/track-request"): _REQUEST_TABLES,
    ("POST", "/log-request"): _REQUEST_TABLES,
    ("POST", "/library-track-score"): _REQUEST_TABLES | {"track_calls"},
    ("POST", "/library-track-metadata"): _REQUEST_TABLES | {"track_calls"},
    ("POST", "/library-track-prompt"): _REQUEST_TABLES | {"track_calls"},
    ("POST", "/track-group"): _REQUEST_TABLES | {"track_calls"},
    ("POST", "/create-group"): {"groups"},
    ("POST", "/promptrun/v1/ingest"): _REQUEST_TABLES | {"track_calls"},
    ("POST", "/prompt-templates/{name}"): set(),
    ("GET", "/prompt-templates"): set(),
    ("GET", "/promptrun/v1/requests"): set(),
    ("GET", "/promptrun/v1/requests/{ref}"): set(),
    ("GET", "/health"): set(),
    ("GET", "/promptrun/v1/info"): set(),
    ("GET", "/promptrun/v1/openapi.json"): set(),
    ("POST", "/rest/workflows"): {"workflows", "workflow_versions", "workflow_labels"},
    ("POST", "/workflows/{ref}/run"): set(),  # fuzzed where no workflow exists: never runs
    ("POST", "/promptrun/v1/workflow-executions/{id}/cancel"): set(),  # no run to cancel
    ("POST", "/ws-token-request-library"): set(),
    ("GET", "/workflows"): set(),
    ("GET", "/workflows/{ref}"): set(),
    ("GET", "/workflow-version-execution-results"): set(),
    ("GET", "/promptrun/v1/workflow-executions"): set(),
    ("GET", "/promptrun/v1/workflow-executions/{id}"): set(),
    ("GET", "/connection/websocket"): set(),
    ("POST", "/v1/traces"): {"spans", "traces"},
    ("GET", "/promptrun/v1/traces"): set(),
    ("GET", "/promptrun/v1/traces/{trace_id}"): set(),
    ("GET", "/promptrun/v1/keys"): set(),
    ("POST", "/promptrun/v1/keys"): {"api_keys"},
    ("POST", "/promptrun/v1/keys/{id}/revoke"): {"api_keys", "dashboard_sessions"},
    ("GET", "/prompt-templates/{identifier}/labels"): set(),
    ("POST", "/prompts/{prompt_id}/label"): {"release_labels"},
    ("PATCH", "/prompt-labels/{id}"): {"release_labels"},
    ("DELETE", "/prompt-labels/{id}"): {"release_labels"},
}
# OTLP's endpoint answers its errors as its specification says: a google.rpc.Status.
STATUS_ERRORS = {("POST", "/v1/traces")}
# Fuzzed on a server of their own: a generated revocation may take its key away.
OWN_SERVER = {route for route in WRITES if route[1].startswith("/promptrun/v1/keys")}
# Starting a workflow run makes the server call the providers and tool URLs its definition
# names; these routes are fuzzed on a server with no workflow, so nothing ever runs.
WITHOUT_WORKFLOWS = {("POST", "/workflows/{ref}/run")}
QUERY_PARAMS = {
    "/prompt-templates": ["page", "per_page", "label"],
    "/promptrun/v1/requests": ["limit", "offset", "prompt_name"],
    "/workflows": ["page", "per_page"],
    "/workflows/{ref}": ["version", "label"],
    "/workflow-version-execution-results": [
        "workflow_version_execution_id", "return_all_outputs",
    ],
    "/promptrun/v1/workflow-executions": ["workflow", "status", "limit", "offset"],
    "/ws-token-request-library": ["capability"],
    "/promptrun/v1/traces": [
        "limit", "offset", "service", "name", "status", "since", "until", "min_duration_ms",
        "max_duration_ms", "has_error", "after_id",
    ],
}  # fmt: skip
_RAW_PATHS = {"%", "%zz", "%00"}


def _operations() -> list[tuple[str, str]]:
    app = create_app(ServerConfig(db_path=Path("never-opened.db"), **CONFIG))  # type: ignore[arg-type]
    return sorted({(op.method, op.path) for op in app[OPENAPI].operations})


OPERATIONS = _operations()
BODY_OPERATIONS = [op for op in OPERATIONS if op[0] in ("POST", "PUT", "PATCH")]
QUERY_OPERATIONS = [op for op in OPERATIONS if op[1] in QUERY_PARAMS]
PATH_OPERATIONS = [op for op in OPERATIONS if "{" in op[1]]


Target = tuple[RunningServer, Http, Seeded]


@pytest.fixture(scope="module")
def seeded_target() -> Iterator[Target]:
    with running_server(**CONFIG) as srv:  # type: ignore[arg-type]
        http = Http(srv.base_url, srv.api_key)
        yield srv, http, seed(http)


@pytest.fixture(scope="module")
def workflowless_target() -> Iterator[Target]:
    with running_server(**CONFIG) as srv:  # type: ignore[arg-type]
        http = Http(srv.base_url, srv.api_key)
        yield srv, http, seed(http)


@pytest.fixture(scope="module")
def keys_target() -> Iterator[Target]:
    with running_server(**CONFIG) as srv:  # type: ignore[arg-type]
        http = Http(srv.base_url, srv.api_key)
        yield srv, http, seed(http)


def _target(request: pytest.FixtureRequest, route: tuple[str, str]) -> Target:
    if route in OWN_SERVER:
        return request.getfixturevalue("keys_target")  # type: ignore[no-any-return]
    if route not in WITHOUT_WORKFLOWS:
        return request.getfixturevalue("seeded_target")  # type: ignore[no-any-return]
    srv, http, seeded = request.getfixturevalue("workflowless_target")
    assert not _db.snapshot(srv.db_path).get("workflows")
    return srv, http, seeded


def _check(srv: RunningServer, route: tuple[str, str], send: Callable[[], Answer]) -> Answer:
    _db.settle(srv.db_path)
    before = _db.snapshot(srv.db_path)
    if route in WITHOUT_WORKFLOWS:
        assert not before.get("workflows"), "a workflow exists: a 2xx here would run it"
    answer: Answer = send()
    assert answer.status < 500, (answer.status, answer.raw[:300])
    assert answer.content_type == "application/json", answer.raw[:300]
    _db.settle(srv.db_path)
    after = _db.snapshot(srv.db_path)
    if answer.status >= 400:
        if route in STATUS_ERRORS:
            status = answer.json()
            assert isinstance(status["code"], int) and status["message"], answer.raw[:300]
        else:
            assert answer.is_json_error, answer.raw[:300]
        assert after == before, f"a {answer.status} changed the store"
    else:
        answer.json()
        writes = WRITES.get(route)
        if writes is not None:
            changed = {t for t in after if after[t] != before.get(t)}
            assert changed <= writes, f"a {answer.status} wrote {changed - writes}"
    return answer


def test_every_endpoint_is_fuzzed_with_its_store_checked() -> None:
    unknown = sorted(set(OPERATIONS) - set(WRITES))
    assert not unknown, (
        "endpoints fuzzed without knowing which tables a 2xx may write: add them to WRITES "
        f"in tests/fuzz/test_fuzz_api.py: {unknown}"
    )


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS, ids=[f"{m} {p}" for m, p in BODY_OPERATIONS])  # fmt: skip
def test_hostile_bodies_get_a_4xx_json_error_and_leave_the_store_alone(
    request: pytest.FixtureRequest, method: str, path: str
) -> None:
    srv, http, seeded = _target(request, (method, path))
    url = path_for(path, seeded)
    base = valid_body(method, path, seeded)

    @FUZZ
    @given(raw=bodies(base))
    def fuzz(raw: bytes) -> None:
        _check(srv, (method, path), lambda: http.call(method, url, raw))

    fuzz()
    assert http.call("GET", "/health").status == 200


@pytest.mark.parametrize(("method", "path"), QUERY_OPERATIONS, ids=[f"{m} {p}" for m, p in QUERY_OPERATIONS])  # fmt: skip
def test_hostile_query_parameters_get_a_4xx_json_error_or_an_answer(
    request: pytest.FixtureRequest, method: str, path: str
) -> None:
    srv, http, seeded = _target(request, (method, path))
    names = QUERY_PARAMS[path]

    base = path_for(path, seeded)

    @FUZZ
    @given(query=st.dictionaries(st.sampled_from([*names, "x"]), query_values, max_size=4))
    def fuzz(query: dict[str, str]) -> None:
        url = f"{base}?{urlencode(query)}"
        _check(srv, (method, path), lambda: http.call(method, url))

    fuzz()


@pytest.mark.parametrize(("method", "path"), PATH_OPERATIONS, ids=[f"{m} {p}" for m, p in PATH_OPERATIONS])  # fmt: skip
def test_hostile_path_parameters_get_a_4xx_json_error_or_an_answer(
    request: pytest.FixtureRequest, method: str, path: str
) -> None:
    srv, http, seeded = _target(request, (method, path))
    body = valid_body(method, path, seeded)

    @FUZZ
    @given(text=path_texts)
    def fuzz(text: str) -> None:
        part = text if text in _RAW_PATHS else quote(text, safe="")
        head, _, tail = path.partition("}")
        url = head.split("{")[0] + part + path_for(tail, seeded)
        _check(srv, (method, path), lambda: http.call(method, url, body))

    fuzz()


def test_a_request_line_too_long_for_the_http_parser_is_refused_and_the_server_lives_on(
    request: pytest.FixtureRequest,
) -> None:
    srv, http, _ = _target(request, ("GET", "/promptrun/v1/requests"))
    before = _db.snapshot(srv.db_path)
    answer = http.call("GET", "/promptrun/v1/requests?prompt_name=" + "x" * 9000)
    # aiohttp answers this itself (plain text), before any route or middleware runs.
    assert 400 <= answer.status < 500
    assert _db.snapshot(srv.db_path) == before
    assert http.call("GET", "/health").status == 200
