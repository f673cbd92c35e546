"""Two workspaces on one server cannot see or change each other's data, whatever they guess.

Workspace A is seeded; workspace B then calls every endpoint that takes an id or a name with
each id from 1 past the largest one in the database, and with A's names and client ids. Every
such call must be a 404 (or, for a write that takes an optional link, succeed unlinked), and
afterwards A's rows in every table are exactly as before and no row ties B to A.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from promptrun.testing import RunningServer, running_server

from ..server._api import log_body, track_body
from . import _db
from ._http import Answer, Http
from ._samples import VALUE_NODE, Seeded, publish_body, seed

A_KEY = "pl_test_workspace_a_" + "a" * 24
B_KEY = "pl_test_workspace_b_" + "b" * 24

Probe = Callable[[Http, int], Answer]
"""A call from workspace B with a guessed id; the test asserts it answers 404 unless the id
is one of B's own (of the kind the probe names: request, group, or none)."""


# Workflows: workspace A publishes a workflow and runs it (a value node: no provider, no
# network); B then guesses workflow and execution ids. A new route that takes a workflow or
# execution id (or name) gets a probe here; a new table, a line in _db.WORKSPACE_ROWS.
def _seed_workflow(a: Http) -> None:
    flow = {
        "workflow_name": "a-flow",
        "definition": {"input_variables": [], "nodes": [VALUE_NODE]},
        "release_labels": ["prod"],
    }
    a.ok("POST", "/rest/workflows", flow)
    started = a.ok("POST", "/workflows/a-flow/run", {"input_variables": {}})
    execution = started["workflow_version_execution_id"]
    for _ in range(500):
        if a.ok("GET", f"/promptrun/v1/workflow-executions/{execution}")["status"] != "RUNNING":
            return
        time.sleep(0.01)
    raise AssertionError(f"workflow execution {execution} did not finish")


WORKFLOW_SEEDERS: list[Callable[[Http], Any]] = [_seed_workflow]
WORKFLOW_PROBES: dict[str, tuple[str, Probe]] = {
    "read a workflow": ("workflow", lambda h, i: h.call("GET", f"/workflows/{i}")),
    "run a workflow": ("workflow", lambda h, i: h.call("POST", f"/workflows/{i}/run", {})),
    "get a websocket token for a workflow's runs": ("workflow", lambda h, i: h.call(
        "POST", f"/ws-token-request-library?capability=workflows:{i}:run:guess"
    )),
    "list a workflow's executions": ("workflow", lambda h, i: h.call(
        "GET", f"/promptrun/v1/workflow-executions?workflow={i}"
    )),
    "read an execution": ("execution", lambda h, i: h.call(
        "GET", f"/promptrun/v1/workflow-executions/{i}"
    )),
    "cancel an execution": ("execution", lambda h, i: h.call(
        "POST", f"/promptrun/v1/workflow-executions/{i}/cancel"
    )),
    "read an execution's results": ("execution", lambda h, i: h.call(
        "GET", f"/workflow-version-execution-results?workflow_version_execution_id={i}"
    )),
}  # fmt: skip

_ids = itertools.count()


@pytest.fixture(scope="module")
def two() -> Iterator[tuple[RunningServer, Http, Http, Seeded, Seeded]]:
    with running_server(sandbox=False, api_keys=(A_KEY, f"other:{B_KEY}")) as srv:
        a = Http(srv.base_url, A_KEY)
        b = Http(srv.base_url, B_KEY)
        seeded_a = seed(a, prefix="a")
        seed(a, prefix="a2")
        for seeder in WORKFLOW_SEEDERS:
            seeder(a)
        seeded_b = seed(b, prefix="b")
        # Snapshots compare whole rows: let the server derive its rollups, filter rows and
        # text index for every seeded request first, or a snapshot taken early differs.
        _db.settle(srv.db_path)
        yield srv, a, b, seeded_a, seeded_b


def _id_probes(b_seeded: Seeded, a_template: str) -> dict[str, tuple[str, Probe]]:
    """Calls that name a request, group, template or version by a guessed id."""
    mine = b_seeded.request_id

    def ingest_call(endpoint: str, body: dict[str, Any]) -> Probe:
        def probe(http: Http, i: int) -> Answer:
            record = {
                "type": "track_call",
                "client_request_id": f"guess-{next(_ids)}",
                "endpoint": endpoint,
                "body": {k: (i if v is None else v) for k, v in body.items()},
            }
            answer = http.call("POST", "/promptrun/v1/ingest", {"records": [record]})
            (result,) = answer.json()["results"]
            # An ingest answer is 200 with one result per record: a refused one reads as 404.
            status = 404 if result["status"] == "rejected" else 200
            return Answer(status, answer.content_type, answer.raw)

        return probe

    return {
        "read a request": ("request", lambda h, i: h.call("GET", f"/promptrun/v1/requests/{i}")),
        "score a request": ("request", lambda h, i: h.call(
            "POST", "/library-track-score", {"request_id": i, "score": 1}
        )),
        "add metadata": ("request", lambda h, i: h.call(
            "POST", "/library-track-metadata", {"request_id": i, "metadata": {"x": "y"}}
        )),
        "link a template": ("request", lambda h, i: h.call(
            "POST", "/library-track-prompt", {"request_id": i, "prompt_name": a_template}
        )),
        "put a request in my group": ("request", lambda h, i: h.call(
            "POST", "/track-group", {"request_id": i, "group_id": b_seeded.group_id}
        )),
        "put my request in a group": ("group", lambda h, i: h.call(
            "POST", "/track-group", {"request_id": mine, "group_id": i}
        )),
        "track a request into a group": ("group", lambda h, i: h.call(
            "POST", "/track-request", track_body(group_id=i)
        )),
        "fetch a template version": ("none", lambda h, i: h.call(
            "POST", f"/prompt-templates/{a_template}", {"version": i}
        )),
        "ingest a score": ("request", ingest_call("score", {"request_id": None, "score": 1})),
        "ingest a group": ("group", ingest_call("group", {"request_id": mine, "group_id": None})),
        "ingest metadata": (
            "request", ingest_call("metadata", {"request_id": None, "metadata": {"x": "y"}})
        ),
    }  # fmt: skip


def test_guessed_ids_from_another_workspace_find_nothing_and_change_nothing(
    two: tuple[RunningServer, Http, Http, Seeded, Seeded],
) -> None:
    srv, _a, b, seeded_a, seeded_b = two
    a_id = _db.workspace_id(srv.db_path, "default")
    before = _db.workspace_rows(srv.db_path, a_id)
    last = _db.max_id(srv.db_path) + 3
    b_id = _db.workspace_id(srv.db_path, "other")
    probes = _id_probes(seeded_b, seeded_a.template)
    probes |= WORKFLOW_PROBES
    wrong: list[str] = []
    for i in range(1, last + 1):
        for what, (kind, probe) in probes.items():
            answer = probe(b, i)
            if answer.status == 404:
                continue
            # B's own ids are found, of course; B's writes add some as the loop goes.
            if answer.status < 300 and i in _db.owned_ids(srv.db_path, b_id).get(kind, ()):
                continue
            wrong.append(f"{what} with id {i}: {answer.status} {answer.raw[:120]!r}")
    assert not wrong, "\n".join(wrong)
    assert _db.workspace_rows(srv.db_path, a_id) == before
    assert _db.cross_workspace_links(srv.db_path) == dict.fromkeys(
        _db.cross_workspace_links(srv.db_path), 0
    )


def test_names_and_client_ids_from_another_workspace_find_nothing(
    two: tuple[RunningServer, Http, Http, Seeded, Seeded],
) -> None:
    srv, a, b, seeded_a, _seeded_b = two
    a_id = _db.workspace_id(srv.db_path, "default")
    before = _db.workspace_rows(srv.db_path, a_id)
    name, client_id = seeded_a.template, seeded_a.client_request_id
    for body in ({}, {"label": "prod"}, {"version": 1}, {"input_variables": {}}):
        assert b.call("POST", f"/prompt-templates/{name}", body).status == 404, body
    assert b.call("GET", f"/promptrun/v1/requests/{client_id}").status == 404
    for path, body in [
        ("/library-track-score", {"request_id": client_id, "score": 3}),
        ("/library-track-metadata", {"request_id": client_id, "metadata": {"k": "v"}}),
        ("/library-track-prompt", {"request_id": client_id, "prompt_name": name}),
        ("/track-group", {"request_id": client_id, "group_id": seeded_a.group_id}),
    ]:
        assert b.call("POST", path, body).status == 404, path
    for method, path in [
        ("GET", "/workflows/a-flow"),
        ("GET", "/workflows/a-flow?label=prod"),
        ("POST", "/workflows/a-flow/run"),
        ("GET", "/promptrun/v1/workflow-executions?workflow=a-flow"),
    ]:
        assert b.call(method, path, {} if method == "POST" else None).status == 404, path
    assert b.ok("GET", "/workflows")["total"] == 0
    assert b.ok("GET", "/promptrun/v1/workflow-executions")["total"] == 0
    assert b.call("GET", f"/promptrun/v1/traces/{seeded_a.trace_id}").status == 404
    their_traces = {t["trace_id"] for t in b.ok("GET", "/promptrun/v1/traces?limit=1000")["items"]}
    assert seeded_a.trace_id not in their_traces
    # Lists show only the caller's own things.
    templates = b.ok("GET", "/prompt-templates?per_page=1000")
    assert name not in {t["prompt_name"] for t in templates["items"]}
    assert b.ok("GET", f"/promptrun/v1/requests?prompt_name={name}")["total"] == 0
    a_requests = {r["id"] for r in a.ok("GET", "/promptrun/v1/requests?limit=1000")["items"]}
    b_requests = {r["id"] for r in b.ok("GET", "/promptrun/v1/requests?limit=1000")["items"]}
    assert a_requests and b_requests and not a_requests & b_requests
    # Writes that name A's template or ids store B's own record, linked to nothing of A's.
    tracked = b.ok("POST", "/track-request", track_body(prompt_id=seeded_a.template_id))
    logged = b.ok(
        "POST", "/log-request", log_body(prompt_id=seeded_a.template_id, prompt_name=name)
    )
    for request_id in (tracked["request_id"], logged["id"]):
        stored = b.ok("GET", f"/promptrun/v1/requests/{request_id}")
        assert stored["prompt_id"] is None
    # The same name published by B is B's own template, version 1; A's is untouched.
    theirs = b.call("POST", "/rest/prompt-templates", publish_body(name))
    assert theirs.status == 201
    assert theirs.json()["version_number"] == 1
    assert theirs.json()["id"] != seeded_a.template_id
    assert _db.workspace_rows(srv.db_path, a_id) == before
    assert set(_db.cross_workspace_links(srv.db_path).values()) == {0}


def test_every_table_is_mapped_to_its_workspace(
    two: tuple[RunningServer, Http, Http, Seeded, Seeded],
) -> None:
    srv = two[0]
    unmapped = sorted(set(_db.tables(srv.db_path)) - set(_db.WORKSPACE_ROWS))
    assert not unmapped, (
        f"tables the isolation tests cannot check: {unmapped}; add each to "
        "tests/security/_db.py WORKSPACE_ROWS with the query that selects one workspace's rows"
    )
