"""The OpenAPI document: complete, served without a key, valid, and carrying the limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import schemathesis

from promptrun.server.openapi import OPENAPI, OPENAPI_PATH, build_spec
from promptrun.testing import RunningServer

from ._http import Http
from ._routes import PUBLIC, full_app, is_not_keyed, rest_routes


def _spec_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_rest_route_of_the_app_is_in_the_openapi_document(tmp_path: Path) -> None:
    app = full_app(tmp_path / "p.db")
    spec = build_spec(app[OPENAPI].operations)
    routed = set(rest_routes(app))
    documented = {route for route in _spec_routes(spec) if not is_not_keyed(route[1])}
    missing = sorted(routed - documented)
    assert not missing, (
        "routes with no OpenAPI entry: add an Operation for each to the OPERATIONS list of "
        f"the module that defines it: {missing}"
    )
    assert not sorted(documented - routed), "documented routes the app does not have"


def test_the_server_serves_its_document_without_a_key(server: RunningServer) -> None:
    answer = Http(server.base_url).call("GET", OPENAPI_PATH, key=None)
    assert answer.status == 200
    assert answer.content_type == "application/json"
    spec = answer.json()
    assert spec["openapi"] == "3.1.0"
    assert {"/track-request", "/prompt-templates/{name}", "/promptrun/v1/ingest"} <= set(
        spec["paths"]
    )


def test_only_health_info_and_the_document_itself_are_documented_as_public(
    tmp_path: Path,
) -> None:
    spec = build_spec(full_app(tmp_path / "p.db")[OPENAPI].operations)
    public = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if op["security"] == []
    }
    assert {route for route in public if not is_not_keyed(route[1])} == PUBLIC
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if (method.upper(), path) not in public:
                assert "401" in op["responses"], (method, path)


def test_the_document_loads_as_openapi_and_its_schemas_compile(tmp_path: Path) -> None:
    spec = build_spec(full_app(tmp_path / "p.db")[OPENAPI].operations)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(spec)))
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in spec["paths"].values())
    # The components as one JSON Schema document, so each can be compiled with its refs.
    text = json.dumps(spec["components"]["schemas"]).replace("#/components/schemas/", "#/$defs/")
    defs = json.loads(text)
    for name in defs:
        jsonschema_rs.validator_for({"$defs": defs, "$ref": f"#/$defs/{name}"})


def test_every_error_answer_is_documented_as_the_json_error_shape(tmp_path: Path) -> None:
    spec = build_spec(full_app(tmp_path / "p.db")[OPENAPI].operations)
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["success", "message"]
    for path, ops in spec["paths"].items():
        # OTLP's endpoint answers as its specification says: a google.rpc.Status.
        shape = "RpcStatus" if path == "/v1/traces" else "ErrorBody"
        for op in ops.values():
            for status, response in op["responses"].items():
                schema = response["content"]["application/json"]["schema"]
                if int(status) >= 400:
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}


def test_request_schemas_carry_the_field_limits(tmp_path: Path) -> None:
    schemas = build_spec(full_app(tmp_path / "p.db")[OPENAPI].operations)["components"]["schemas"]
    track = schemas["TrackRequestBody"]["properties"]
    tags = next(s for s in track["tags"]["anyOf"] if s.get("type") == "array")
    assert tags["maxItems"] == 100
    assert tags["items"]["maxLength"] == 512
    assert track["function_name"]["maxLength"] == 512
    # A newer SDK's keys are ignored on the PromptLayer endpoints; promptrun's own refuse them.
    assert schemas["TrackRequestBody"].get("additionalProperties", True) is not False
    assert schemas["IngestBatch"]["additionalProperties"] is False
    name = schemas["PublishTemplatePart"]["properties"]["prompt_name"]
    assert (name["minLength"], name["maxLength"]) == (1, 512)
    group = schemas["TrackGroupBody"]["properties"]["group_id"]
    assert group["maximum"] == 2**63 - 1
    records = schemas["IngestBatch"]["properties"]["records"]
    assert records["maxItems"] == 10_000
