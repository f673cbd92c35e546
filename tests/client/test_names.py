"""Any name the server takes round-trips through the client: the client percent-encodes every
name it puts in a URL path (braces, spaces, ``%``, ``/``, unicode, and names made of dots),
so a template or workflow it could publish it can also fetch and run; a name the server
refuses is its clear 400, never a 404 or 405 from a mangled path."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from promptrun import PromptLayerBadRequestError

from .._clients import Factory

pytestmark = pytest.mark.anyio

NAMES = ["wa{b}", "a b", "Zoë ünïcode", "100%", "%2E%2E", "a/b", "a?b#c", "..", ".", "x/../y"]


def _template(name: str) -> dict[str, Any]:
    return {
        "prompt_name": name,
        "prompt_template": {
            "type": "chat",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi {who}"}],
                 "template_format": "f-string"}
            ],
        },
        "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}},
    }  # fmt: skip


async def _refusal(publishing: Awaitable[Any]) -> str | None:
    """None when the publish succeeded, else the server's 400 message."""
    try:
        await publishing
    except PromptLayerBadRequestError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", NAMES)
async def test_a_template_name_round_trips_through_publish_get_and_run(
    name: str, make_client: Factory
) -> None:
    async with make_client() as pl:
        refused = await _refusal(pl.templates.publish(_template(name)))
        if refused is not None:
            assert "name" in refused  # the server's own reason, not a routing error
            return
        got = await pl.templates.get(name, {"input_variables": {"who": "Ada"}})
        assert got["prompt_name"] == name
        assert got["llm_kwargs"]["messages"][0]["content"] == "Hi Ada"
        result = await pl.run(name, input_variables={"who": "Ada"})
        assert result["raw_response"].choices[0].message.content
        labelled = await pl.templates.get(name, {"version": got["version"]})
        assert labelled["version"] == got["version"]


@pytest.mark.parametrize("name", NAMES)
async def test_a_workflow_name_round_trips_through_publish_and_run_workflow(
    name: str, make_client: Factory
) -> None:
    definition = {"nodes": [{"name": "v", "type": "value", "configuration": {"value": 7},
                             "is_output_node": True}]}  # fmt: skip
    async with make_client() as pl:
        refused = await _refusal(
            pl.workflows.publish({"workflow_name": name, "definition": definition})
        )
        if refused is not None:
            assert "name" in refused  # the server's own reason, not a routing error
            return
        assert await pl.run_workflow(name) == 7
        assert await pl.run_workflow(name, execution="local") == 7
