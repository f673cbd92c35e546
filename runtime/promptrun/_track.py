"""``track.*``: the arguments checked and turned into a request body, shared by both clients.

Plain functions, so the sync client can check and queue a track call in the caller's thread
without a round trip to the portal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptrun._validate import (
    check_dict,
    check_int,
    check_metadata,
    check_request_id,
    check_str,
    check_str_map,
)

if TYPE_CHECKING:
    from promptrun.wire.tracking import TrackEndpoint

__all__ = ["TRACK_BODIES", "group_body", "metadata_body", "prompt_body", "score_body"]


def metadata_body(request_id: int | str, metadata: dict[str, str]) -> dict[str, Any]:
    check_request_id("track.metadata()", request_id)
    check_str_map("track.metadata()", "metadata", metadata)
    check_metadata("track.metadata()", metadata)
    return {"request_id": request_id, "metadata": dict(metadata)}


def score_body(request_id: int | str, score: int, score_name: str | None = None) -> dict[str, Any]:
    check_request_id("track.score()", request_id)
    check_int("track.score()", "score", score, lo=0, hi=100)
    check_str("track.score()", "score_name", score_name, optional=True)
    body: dict[str, Any] = {"request_id": request_id, "score": score}
    if score_name is not None:
        body["name"] = score_name
    return body


def prompt_body(
    request_id: int | str,
    prompt_name: str,
    prompt_input_variables: dict[str, Any],
    version: int | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    where = "track.prompt()"
    check_request_id(where, request_id)
    check_str(where, "prompt_name", prompt_name)
    check_dict(where, "prompt_input_variables", prompt_input_variables, optional=False)
    check_int(where, "version", version, optional=True)
    check_str(where, "label", label, optional=True)
    return {
        "request_id": request_id,
        "prompt_name": prompt_name,
        "prompt_input_variables": dict(prompt_input_variables),
        "version": version,
        "label": label,
    }


def group_body(request_id: int | str, group_id: int) -> dict[str, Any]:
    check_request_id("track.group()", request_id)
    check_int("track.group()", "group_id", group_id)
    return {"request_id": request_id, "group_id": group_id}


TRACK_BODIES: dict[TrackEndpoint, Callable[..., dict[str, Any]]] = {
    "metadata": metadata_body,
    "score": score_body,
    "prompt": prompt_body,
    "group": group_body,
}
