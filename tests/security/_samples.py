"""A valid request for every REST route, and a workspace seeded with something to point at."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from ..server._api import CHAT, OPENAI_MODEL, log_body, track_body
from ._http import Http

__all__ = ["Seeded", "path_for", "seed", "valid_body"]

_ids = itertools.count()
VALUE_NODE = {"name": "v", "type": "value", "configuration": {"value": 1}, "is_output_node": True}


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :func:`seed` made in one workspace."""

    template: str
    template_id: int
    request_id: int
    client_request_id: str
    group_id: int
    trace_id: str


def otlp_json(trace_id: str, span_id: str = "00f067aa0ba902b7") -> dict[str, Any]:
    """An OTLP/JSON export of one span."""
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "seeded span",
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def publish_body(name: str, labels: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_template": {"prompt_name": name, "tags": ["t"]},
        "prompt_version": {"prompt_template": CHAT, "metadata": OPENAI_MODEL},
    }
    if labels is not None:
        body["release_labels"] = labels
    return body


def seed(http: Http, *, prefix: str = "sec") -> Seeded:
    """A template, a tracked request with a score, metadata and a group, and an ingested one."""
    name = f"{prefix}-greet"
    published = http.ok("POST", "/rest/prompt-templates", publish_body(name, ["prod"]))
    request_id = http.ok("POST", "/track-request", track_body())["request_id"]
    group_id = http.ok("POST", "/create-group", {})["id"]
    http.ok("POST", "/library-track-score", {"request_id": request_id, "score": 70})
    http.ok("POST", "/library-track-metadata", {"request_id": request_id, "metadata": {"a": "b"}})
    http.ok("POST", "/track-group", {"request_id": request_id, "group_id": group_id})
    client_id = f"{prefix}-client-{next(_ids)}"
    record = {"type": "log", "client_request_id": client_id, "body": log_body()}
    http.ok("POST", "/promptrun/v1/ingest", {"records": [record]})
    trace_id = f"{next(_ids) + 1:032x}"
    http.ok("POST", "/v1/traces", otlp_json(trace_id))
    return Seeded(name, published["id"], request_id, client_id, group_id, trace_id)


def path_for(path: str, seeded: Seeded) -> str:
    """The router's path with its parameters filled from ``seeded``."""
    filled = path.replace("{name}", seeded.template).replace("{ref}", str(seeded.request_id))
    filled = filled.replace("{trace_id}", seeded.trace_id)
    for template in ("{identifier}", "{prompt_id}"):
        filled = filled.replace(template, seeded.template)
    return re.sub(r"\{\w+\}", "1", filled)


def valid_body(method: str, path: str, seeded: Seeded) -> Any:
    """A body the route accepts from the seeded workspace; ``{}`` for a route not known here."""
    rid, gid = seeded.request_id, seeded.group_id
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/prompt-templates/{name}"): {"input_variables": {"name": "A", "topic": "B"}},
        ("POST", "/rest/prompt-templates"): publish_body(seeded.template),
        ("POST", "/track-request"): track_body(),
        ("POST", "/log-request"): log_body(),
        ("POST", "/library-track-score"): {"request_id": rid, "score": 5},
        ("POST", "/library-track-metadata"): {"request_id": rid, "metadata": {"k": "v"}},
        ("POST", "/library-track-prompt"): {"request_id": rid, "prompt_name": seeded.template},
        ("POST", "/track-group"): {"request_id": rid, "group_id": gid},
        ("POST", "/create-group"): {},
        ("POST", "/promptrun/v1/ingest"): {
            "records": [
                {"type": "track", "client_request_id": f"s-{next(_ids)}", "body": track_body()}
            ]
        },
        ("POST", "/promptrun/v1/ingest/status"): {"client_request_ids": [seeded.client_request_id]},
        ("POST", "/promptrun/v1/_faults"): {"rules": []},
        ("POST", "/v1/traces"): otlp_json(seeded.trace_id),
        ("POST", "/promptrun/v1/keys"): {"name": f"{seeded.template}-key"},
        ("POST", "/rest/workflows"): {
            "workflow_name": f"{seeded.template}-flow",
            "definition": {"input_variables": [], "nodes": [VALUE_NODE]},
            "release_labels": ["prod"],
        },
        ("POST", "/prompts/{prompt_id}/label"): {"name": "prod", "prompt_version_number": 1},
        ("PATCH", "/prompt-labels/{id}"): {"prompt_version_number": 1},
        ("POST", "/workflows/{ref}/run"): {
            "input_variables": {},
            "metadata": None,
            "workflow_label_name": None,
            "workflow_version_number": None,
            "return_all_outputs": False,
        },
    }
    if method in ("GET", "DELETE"):
        return None
    return bodies.get((method, path), {})
