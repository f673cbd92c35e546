"""The spec's log_request section: the OpenAI example verbatim, as the script it is, and
"This works with any LLM provider, including Anthropic"."""

from __future__ import annotations

from .conftest import ANTHROPIC_MODEL, SpecServer, script

LOG_REQUEST_EXAMPLE = """
from openai import OpenAI
from promptrun import PromptLayer
import time

pl_client = PromptLayer()
client = OpenAI()

messages = [
    {"role": "system", "content": "You are an AI."},
    {"role": "user", "content": "Compose a poem please."}
]

request_start_time = time.time()
completion = client.chat.completions.create(
    model="gpt-4o",
    messages=messages
)
request_end_time = time.time()

# Log to PromptLayer
pl_client.log_request(
    provider="openai",
    model="gpt-4o",
    input={"type": "chat", "messages": [
        {"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
        for m in messages
    ]},
    output={"type": "chat", "messages": [
        {"role": "assistant", "content": [{"type": "text", "text": completion.choices[0].message.content}]}
    ]},
    request_start_time=request_start_time,
    request_end_time=request_end_time,
    tags=["getting-started"]
)
print(completion.choices[0].message.content)  # glue: what the provider answered
"""


def test_log_request_example_logs_a_call_made_with_your_own_openai_client(
    spec_env: SpecServer,
) -> None:
    done = script(LOG_REQUEST_EXAMPLE)
    assert done.returncode == 0, done.stderr
    answer = done.stdout.strip()
    [stored] = [r for r in spec_env.requests() if r["tags"] == ["getting-started"]]
    assert (stored["provider"], stored["model"], stored["status"]) == (
        "openai",
        "gpt-4o",
        "SUCCESS",
    )
    messages = stored["prompt_blueprint"]["prompt_template"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[1]["content"][0]["text"] == "Compose a poem please."
    assert messages[2]["content"][0]["text"] == answer
    assert stored["request_end_time"] >= stored["request_start_time"]


ANTHROPIC_LOG_REQUEST = f"""
import anthropic
from promptrun import PromptLayer
import time

pl_client = PromptLayer()
client = anthropic.Anthropic()
request_start_time = time.time()
message = client.messages.create(
    model="{ANTHROPIC_MODEL}",
    max_tokens=256,
    messages=[{{"role": "user", "content": "Compose a poem please."}}],
)
request_end_time = time.time()
pl_client.log_request(
    provider="anthropic",
    model="{ANTHROPIC_MODEL}",
    input={{"type": "chat", "messages": [
        {{"role": "user", "content": [{{"type": "text", "text": "Compose a poem please."}}]}}
    ]}},
    output={{"type": "chat", "messages": [
        {{"role": "assistant", "content": [{{"type": "text", "text": message.content[0].text}}]}}
    ]}},
    request_start_time=request_start_time,
    request_end_time=request_end_time,
    input_tokens=message.usage.input_tokens,
    output_tokens=message.usage.output_tokens,
    tags=["anthropic-log"],
)
"""


def test_log_request_works_with_any_llm_provider_including_anthropic(
    spec_env: SpecServer,
) -> None:
    done = script(ANTHROPIC_LOG_REQUEST)
    assert done.returncode == 0, done.stderr
    [stored] = [r for r in spec_env.requests() if r["tags"] == ["anthropic-log"]]
    assert (stored["provider"], stored["model"]) == ("anthropic", ANTHROPIC_MODEL)
    assert stored["input_tokens"] > 0
    assert stored["output_tokens"] > 0
