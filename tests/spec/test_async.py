"""The spec's asynchronous section: AsyncPromptLayer, concurrent tasks, and Example 5
(asynchronous streaming with run) as the script it is."""

from __future__ import annotations

import asyncio
from typing import Any

import openai.types.chat

from promptrun import AsyncPromptLayer

from .conftest import SpecServer, example, script

INIT_EXAMPLE = """
from promptrun import AsyncPromptLayer

# Initialize an asynchronous client with your API key
async_promptlayer_client = AsyncPromptLayer(api_key="pl_****")
"""


def test_an_asynchronous_client_is_initialized_with_an_api_key(spec_env: SpecServer) -> None:
    client = example(INIT_EXAMPLE)["async_promptlayer_client"]
    assert isinstance(client, AsyncPromptLayer)
    assert client.api_key == "pl_****"
    assert client.base_url == spec_env.base_url


def test_the_async_client_manages_concurrent_tasks_without_blocking(
    spec_env: SpecServer,
) -> None:
    variables = [{"variable1": f"tea {i}", "variable2": f"cake {i}"} for i in range(20)]

    async def main() -> list[dict[str, object]]:
        async with AsyncPromptLayer() as pl:
            return await asyncio.gather(
                *(pl.run(prompt_name="TestPrompt", input_variables=v) for v in variables)
            )

    results = asyncio.run(main())
    assert len({r["request_id"] for r in results}) == 20
    for result, v in zip(results, variables, strict=True):
        assert isinstance(result["raw_response"], openai.types.chat.ChatCompletion)
        assert v["variable1"] in str(result["raw_response"].choices[0].message.content)
    stored = {
        r["input_variables"]["variable1"] for r in spec_env.requests() if r["input_variables"]
    }
    assert {v["variable1"] for v in variables} <= stored


STREAM_EXAMPLE = """
import asyncio
import os
from promptrun import AsyncPromptLayer

async def main():
    async_promptlayer_client = AsyncPromptLayer(
        api_key=os.environ.get("PROMPTLAYER_API_KEY")
    )

    response_generator = await async_promptlayer_client.run(
        prompt_name="TestPrompt",
        input_variables={"variable1": "value1", "variable2": "value2"},
        stream=True
    )

    final_response = ""
    async for response in response_generator:
        # Access raw streaming response
        print("Raw streaming response:", response["raw_response"])

        # Access progressively built prompt blueprint
        if response["prompt_blueprint"]:
            current_response = response["prompt_blueprint"]["prompt_template"]["messages"][-1]
            if current_response.get("content"):
                print(f"Current response: {current_response['content']}")

# Run the async function
asyncio.run(main())
"""


def test_async_streaming_example_prints_raw_chunks_and_the_response_built_so_far(
    spec_env: SpecServer,
) -> None:
    done = script(STREAM_EXAMPLE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    raw = [line for line in lines if line.startswith("Raw streaming response: ")]
    built = [line for line in lines if line.startswith("Current response: ")]
    assert len(raw) > 2
    assert all("ChatCompletionChunk(" in line for line in raw)
    assert built
    assert "value1" in built[-1]
    assert "value2" in built[-1]


def test_async_streaming_example_has_its_run_on_the_server_when_the_script_ends(
    spec_env: SpecServer,
) -> None:
    # The example never closes its client: its run must still be logged before the process
    # exits (the PromptLayer SDK logs it inline).
    def runs() -> list[dict[str, Any]]:
        example_vars = {"variable1": "value1", "variable2": "value2"}
        return [r for r in spec_env.requests() if r["input_variables"] == example_vars]

    before = len(runs())
    done = script(STREAM_EXAMPLE)
    assert done.returncode == 0, done.stderr
    after = runs()
    assert len(after) == before + 1
    assert after[0]["status"] == "SUCCESS"  # newest first
    assert after[0]["prompt_name"] == "TestPrompt"
