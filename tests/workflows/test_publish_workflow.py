"""``client.workflows.publish``: publish from code (both clients), then run what was published."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from promptrun import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerBadRequestError,
    PromptLayerValidationError,
)

from .conftest import Server

pytestmark = pytest.mark.anyio

UPPER: dict[str, Any] = {
    "input_variables": ["text"],
    "nodes": [
        {
            "name": "upper",
            "type": "code",
            "configuration": {"code": "return text.upper()"},
            "inputs": {"text": "text"},
            "is_output_node": True,
        }
    ],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def test_async_publish_makes_a_version_that_runs_with_its_label(
    client: AsyncPromptLayer, wf_server: Server
) -> None:
    name = unique("upper")
    first = await client.workflows.publish(
        {"workflow_name": name, "definition": UPPER, "commit_message": "one"}
    )
    assert (first["success"], first["version_number"]) == (True, 1)
    second = await client.workflows.publish(
        {"workflow_name": name, "definition": UPPER, "release_labels": ["prod"]}
    )
    assert second["version_number"] == 2
    assert second["workflow"]["release_labels"] == ["prod"]
    assert second["workflow"]["id"] == first["workflow"]["id"]
    assert await client.run_workflow(name, {"text": "ada"}, workflow_label_name="prod") == "ADA"
    stored = wf_server.ok("GET", f"/workflows/{name}?version=1")
    assert stored["workflow"]["commit_message"] == "one"


async def test_a_definition_that_cannot_run_is_refused_with_the_servers_reason(
    client: AsyncPromptLayer,
) -> None:
    bad = {"nodes": [{"name": "a", "type": "code", "configuration": {"code": "return ("}}]}
    with pytest.raises(PromptLayerBadRequestError, match="node 'a' \\(code\\): the code does not"):
        await client.workflows.publish({"workflow_name": unique("bad"), "definition": bad})


async def test_a_body_without_a_name_or_definition_is_refused_before_sending(
    client: AsyncPromptLayer,
) -> None:
    with pytest.raises(PromptLayerValidationError, match='body\\["workflow_name"\\]'):
        await client.workflows.publish({"definition": UPPER})
    with pytest.raises(PromptLayerValidationError, match='body\\["definition"\\] must be a dict'):
        await client.workflows.publish({"workflow_name": "x", "definition": "nodes"})


async def test_with_throw_on_error_false_a_refusal_is_a_warning_and_none(
    wf_server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncPromptLayer(
        api_key=wf_server.api_key,
        base_url=wf_server.base_url,
        spool_dir=tmp_path / "spool",
        throw_on_error=False,
    ) as pl:
        bad = {"nodes": [{"name": "a", "type": "llm"}]}
        with caplog.at_level("WARNING", logger="promptlayer"):
            assert await pl.workflows.publish({"workflow_name": "x", "definition": bad}) is None
    assert any("unknown type 'llm'" in r.getMessage() for r in caplog.records)


def test_the_sync_client_publishes_the_same_way(wf_server: Server, tmp_path: Path) -> None:
    name = unique("sync-upper")
    with PromptLayer(
        api_key=wf_server.api_key, base_url=wf_server.base_url, spool_dir=tmp_path / "spool"
    ) as pl:
        published = pl.workflows.publish({"workflow_name": name, "definition": UPPER})
        assert published["version_number"] == 1
        assert pl.run_workflow(name, {"text": "bo"}) == "BO"
