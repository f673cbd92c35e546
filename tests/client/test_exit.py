"""Every way a script can end with a client it never closed: its records are on the server
when the process has exited, as the peer SDK's are (it logs inline)."""

from __future__ import annotations

import anyio

from .._clients import Probe
from ._scripts import assert_clean_exit_and_stored, delivered, run_script

# The spec's "Asynchronous Streaming Prompt Execution" example, with only the import changed.
SPEC_STREAMING_EXAMPLE = """
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


def test_the_spec_streaming_example_has_its_record_on_the_server_when_asyncio_run_returns(
    script_env: dict[str, str], probe: Probe
) -> None:
    body = {
        "prompt_template": {"prompt_name": "TestPrompt"},
        "prompt_version": {
            "prompt_template": {
                "type": "chat",
                "input_variables": ["variable1", "variable2"],
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "{variable1} {variable2}"}],
                    }
                ],
            },
            "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
        },
    }
    anyio.run(probe._call, "POST", "/rest/prompt-templates", body)
    proc = run_script(script_env, SPEC_STREAMING_EXAMPLE)
    assert "Raw streaming response" in proc.stdout
    assert_clean_exit_and_stored(proc, probe, script_env, 1)


def test_log_request_from_an_async_client_never_closed_arrives_when_asyncio_run_returns(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import asyncio
from promptrun import AsyncPromptLayer
async def main():
    pl = AsyncPromptLayer()
    for i in range(25):
        await pl.log_request(*log_args(i))
asyncio.run(main())
"""
    delivered(script_env, probe, script, 25)


def test_an_async_client_never_closed_under_anyio_run_delivers_everything(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import anyio
from promptrun import AsyncPromptLayer
async def main():
    pl = AsyncPromptLayer()
    for i in range(25):
        await pl.log_request(*log_args(i))
anyio.run(main)
"""
    delivered(script_env, probe, script, 25)


def test_a_client_used_in_one_asyncio_run_and_never_again_delivers_before_the_next_one(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import asyncio
from promptrun import AsyncPromptLayer
pl = AsyncPromptLayer()
async def first():
    for i in range(25):
        await pl.log_request(*log_args(i))
async def second():
    print(stored_now())  # the first loop is over: its records must be on the server already
asyncio.run(first())
asyncio.run(second())
"""
    delivered(script_env, probe, script, 25, prints="25")


def test_a_sync_script_that_exits_right_after_its_last_call_delivers_everything(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
from promptrun import PromptLayer
pl = PromptLayer()
for i in range(25):
    pl.log_request(*log_args(i))
"""
    delivered(script_env, probe, script, 25)


def test_a_sync_client_garbage_collected_before_exit_delivers_everything(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import gc
from promptrun import PromptLayer
def work():
    pl = PromptLayer()
    for i in range(25):
        pl.log_request(*log_args(i))
work()
gc.collect()
"""
    delivered(script_env, probe, script, 25)


def test_a_loop_kept_running_in_a_thread_like_a_notebook_delivers_at_exit(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import asyncio, threading
from promptrun import AsyncPromptLayer
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
pl = AsyncPromptLayer()
async def cell(i):
    await pl.log_request(*log_args(i))
for i in range(25):
    asyncio.run_coroutine_threadsafe(cell(i), loop).result()
# The script ends with the loop still running in its daemon thread.
"""
    delivered(script_env, probe, script, 25)


def test_a_loop_run_forever_then_stopped_and_closed_delivers_everything(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import asyncio
from promptrun import AsyncPromptLayer
pl = AsyncPromptLayer()
loop = asyncio.new_event_loop()
async def main():
    for i in range(25):
        await pl.log_request(*log_args(i))
    loop.stop()
loop.create_task(main())
loop.run_forever()
loop.close()
"""
    delivered(script_env, probe, script, 25)


def test_a_closed_loop_and_a_collected_client_deliver_before_the_script_goes_on(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import asyncio, gc
from promptrun import AsyncPromptLayer
async def main():
    pl = AsyncPromptLayer()
    for i in range(25):
        await pl.log_request(*log_args(i))
loop = asyncio.new_event_loop()
loop.run_until_complete(main())
loop.close()
gc.collect()  # the client is garbage: its records ship from a thread, not at exit
print(stored_within(25))
"""
    delivered(script_env, probe, script, 25, prints="25")


def test_an_async_client_collected_while_its_loop_runs_ships_in_that_loop(
    script_env: dict[str, str], probe: Probe
) -> None:
    script = """
import asyncio, gc
from promptrun import AsyncPromptLayer
async def use():
    pl = AsyncPromptLayer()
    for i in range(25):
        await pl.log_request(*log_args(i))
async def main():
    await use()
    gc.collect()  # shipped by its runtime in this loop, which keeps running meanwhile
    print(await asyncio.to_thread(stored_within, 25))
asyncio.run(main())
"""
    delivered(script_env, probe, script, 25, prints="25")


def test_records_logged_after_the_loop_cancelled_the_runtime_still_arrive(
    script_env: dict[str, str], probe: Probe
) -> None:
    # A task still logging when asyncio.run() ends: its last record comes after the runtime's
    # own final shipment, from the task's cleanup.
    script = """
import asyncio
from promptrun import AsyncPromptLayer
pl = AsyncPromptLayer()
async def worker():
    try:
        await asyncio.sleep(60)
    finally:
        await pl.log_request(*log_args(99))
async def main():
    for i in range(5):
        await pl.log_request(*log_args(i))
    asyncio.get_running_loop().create_task(worker())
    await asyncio.sleep(0.1)
asyncio.run(main())
"""
    delivered(script_env, probe, script, 6)
