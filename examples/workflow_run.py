"""Publish examples/workflow_example.json and run it on the server, then locally.

PROMPTLAYER_BASE_URL=http://127.0.0.1:8765 PROMPTLAYER_API_KEY=... python examples/workflow_run.py

Needs the example templates (examples/publish_templates.py). The workflow's tool node calls
an HTTP endpoint this script serves on 127.0.0.1, port $PROMPTRUN_EXAMPLE_TOOL_PORT (8766 by
default); the server calls only the tool URLs it is told to, so start it with
``--tool-url http://127.0.0.1:8766`` (``make demo`` does). In local execution a Python
function stands in for the tool (tools={"shout": ...}).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from promptrun import AsyncPromptLayer

DEFINITION = Path(__file__).parent / "workflow_example.json"
NAME = "greet-and-summarize"


def shout(text: str) -> str:
    return text.upper()


async def shout_endpoint(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(shout(body["text"]))


async def serve_tool() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/shout", shout_endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", int(os.environ.get("PROMPTRUN_EXAMPLE_TOOL_PORT", 8766))
    )
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/shout"


async def publish(definition: dict[str, Any]) -> dict[str, Any]:
    """POST /rest/workflows: a new version of the workflow, labelled prod."""
    base = os.environ["PROMPTLAYER_BASE_URL"].rstrip("/")
    body = {
        "workflow_name": NAME,
        "definition": definition,
        "commit_message": "example workflow",
        "release_labels": ["prod"],
    }
    headers = {"X-API-KEY": os.environ["PROMPTLAYER_API_KEY"]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/rest/workflows", json=body, headers=headers) as response,
    ):
        answer: dict[str, Any] = await response.json()
        if response.status != 201:
            raise SystemExit(f"publishing failed: {answer.get('message')}")
        return answer


async def main() -> None:
    runner, tool_url = await serve_tool()
    try:
        definition = json.loads(DEFINITION.read_text())
        for node in definition["nodes"]:
            if node["type"] == "tool":
                node["configuration"]["url"] = tool_url
        async with AsyncPromptLayer() as pl:
            published = await publish(definition)
            print(f"published {NAME!r} version {published['version_number']}")
            inputs = {"topic": "tea ceremonies", "name": "Ada"}

            final = await pl.run_workflow(NAME, inputs, workflow_label_name="prod")
            print(f"server final output: {final}")
            nodes = await pl.run_workflow(NAME, inputs, return_all_outputs=True)
            for name, record in nodes.items():
                detail = (
                    record["value"] if record["status"] == "SUCCESS" else record["error_message"]
                )
                print(f"  {name}: {record['status']} {str(detail)[:70]}")

            local = await pl.run_workflow(
                NAME, inputs, execution="local", tools={"shout": shout}, return_all_outputs=True
            )
            statuses = ", ".join(f"{n}={r['status']}" for n, r in local.items())
            print(f"local execution: {statuses}")
            print(f"local final output: {local['headline']['value'] or local['note']['value']}")
            await pl.flush()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
