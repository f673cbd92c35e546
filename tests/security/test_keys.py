"""Nobody gets in without a key: every REST route of the app, walked from its router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promptrun.testing import RunningServer, running_server

from ._http import Http
from ._routes import PUBLIC, Route, all_routes, full_app, is_dashboard, rest_routes
from ._samples import Seeded, path_for, seed, valid_body

ROUTES = rest_routes(full_app(Path("never-opened.db")))
KEYED = [route for route in ROUTES if route not in PUBLIC]
WRONG = "pl_wrong_" + "0" * 40


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[RunningServer, Seeded]]:
    with running_server(sandbox=True, fault_injection=True) as srv:
        yield srv, seed(Http(srv.base_url, srv.api_key))


def test_the_walk_finds_the_keyed_routes() -> None:
    assert len(KEYED) >= 15
    assert ("POST", "/track-request") in KEYED
    assert ("GET", "/promptrun/v1/requests/{ref}") in KEYED


@pytest.mark.parametrize(("method", "path"), KEYED, ids=[f"{m} {p}" for m, p in KEYED])
def test_a_keyed_route_answers_401_without_a_valid_key(
    keyed: tuple[RunningServer, Seeded], method: str, path: str
) -> None:
    srv, seeded = keyed
    http = Http(srv.base_url)
    url = path_for(path, seeded)
    body = valid_body(method, path, seeded)
    attempts: dict[str, tuple[object, dict[str, str], str | None]] = {
        "no key": (body, {}, None),
        "no key, a body that is not JSON": (b"{not json", {}, None),
        "no key, a body of the wrong shape": ([1, 2], {}, None),
        "a wrong X-API-KEY": (body, {}, WRONG),
        "a wrong bearer token": (body, {"Authorization": f"Bearer {WRONG}"}, None),
        "a wrong X-API-KEY beside a right bearer token": (
            body, {"Authorization": f"Bearer {srv.api_key}"}, WRONG,
        ),
        "an empty X-API-KEY": (body, {"X-API-KEY": ""}, None),
    }  # fmt: skip
    if isinstance(body, dict):
        attempts["a wrong api_key in the body"] = ({**body, "api_key": WRONG}, {}, None)
        attempts["a wrong X-API-KEY beside a right api_key in the body"] = (
            {**body, "api_key": srv.api_key}, {}, WRONG,
        )  # fmt: skip
    for what, (sent, headers, key) in attempts.items():
        answer = http.call(method, url, sent, key=key, headers=headers)
        assert answer.status == 401, (what, answer.status, answer.raw[:300])
        if path == "/v1/traces":  # OTLP's own error shape: a google.rpc.Status, UNAUTHENTICATED
            assert answer.json()["code"] == 16, what
        else:
            assert answer.is_json_error, what
        message = answer.json()["message"]
        assert "API key" in message, (what, message)
    # The same call with the key gets past authentication.
    answer = http.call(method, url, body, key=srv.api_key)
    assert answer.status != 401, answer.raw[:300]


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_a_public_route_answers_without_a_key(
    keyed: tuple[RunningServer, Seeded], method: str, path: str
) -> None:
    srv, _ = keyed
    answer = Http(srv.base_url).call(method, path, key=None)
    assert answer.status == 200
    assert answer.content_type == "application/json"


def test_without_a_session_every_dashboard_page_but_sign_in_redirects_to_it(
    keyed: tuple[RunningServer, Seeded],
) -> None:
    srv, seeded = keyed
    http = Http(srv.base_url)
    pages: list[Route] = [
        (method, path)
        for method, path in all_routes(full_app(Path("never-opened.db")))
        if is_dashboard(path) and not path.endswith("/signin")
    ]
    assert pages
    for method, path in pages:
        url = path_for(path, seeded)
        answer = http.call(method, url, b"", key=None, headers={"X-API-KEY": srv.api_key})
        assert answer.status in (302, 303), (method, path, answer.status)
