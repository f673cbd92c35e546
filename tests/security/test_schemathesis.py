"""schemathesis against the server's own OpenAPI document, on an in-process server.

For every operation, generated requests (valid ones and ones that break the schema) must get
no 5xx, only the status codes the document declares, JSON in the declared shape, a 4xx for
schema-breaking input, a 401 without the key, and a 405 for a method the path does not take.

Not checked: that every schema-valid body is accepted. The server checks more than the
schema says (a ``log-request`` input must be a prompt template, an integer must not be
written ``1.0``), so such bodies are 400s by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.openapi import OPENAPI, build_spec
from promptrun.testing import RunningServer, running_server

from ._http import Http

# The server under test and the document the tests come from share this configuration.
CONFIG = {"sandbox": False, "fault_injection": False}


def _document() -> dict[str, object]:
    app = create_app(ServerConfig(db_path=Path("never-opened.db"), **CONFIG))  # type: ignore[arg-type]
    return build_spec(app[OPENAPI].operations)


# Starting a workflow run makes the server call the providers and tool URLs its definition
# names: with generated definitions those could be anywhere, and tests talk to loopback only.
# Its body handling is fuzzed in tests/fuzz on a server that has no workflow to run.
NOT_CALLED = {("POST", "/workflows/{ref}/run")}

# POST /prompt-templates/{name} takes names with slashes ("team/greet"), so it also answers
# POST on the labels path (a fetch of the template "x/labels"): that path's Allow header lists
# POST truthfully, which an OpenAPI path template cannot express.
SHADOWED_BY_SLASHED_NAMES = {"/prompt-templates/{identifier}/labels"}

schema = schemathesis.openapi.from_dict(_document())
for _method, _path in NOT_CALLED:
    schema = schema.exclude(method=_method, path=_path)
schema.config.generation.update(
    max_examples=30,
    deterministic=True,  # the same cases every run: a failure here is never a fluke
    with_security_parameters=False,  # the key is ours to send, not schemathesis's to vary
)


@pytest.fixture(scope="module")
def api_server() -> Iterator[RunningServer]:
    with running_server(**CONFIG) as srv:
        yield srv


def test_the_document_under_test_is_the_one_the_server_serves(api_server: RunningServer) -> None:
    served = Http(api_server.base_url).call("GET", "/promptrun/v1/openapi.json", key=None)
    assert served.json() == _document()


@schema.parametrize()
@settings(deadline=None)
def test_the_api_keeps_to_its_openapi_document(
    case: schemathesis.Case, api_server: RunningServer
) -> None:
    excluded = [positive_data_acceptance]
    if case.path in SHADOWED_BY_SLASHED_NAMES:
        excluded.append(allow_header_conformance)
    case.call_and_validate(
        base_url=api_server.base_url,
        headers={"X-API-KEY": api_server.api_key},
        excluded_checks=excluded,
        timeout=30,
    )
