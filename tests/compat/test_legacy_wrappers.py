"""The peer's older entry point: ``pl.openai`` / ``pl.anthropic`` proxies that log each call."""

from __future__ import annotations

from typing import Any

import pytest
from promptlayer import PromptLayer

from ._peer import ANTHROPIC_MODEL, OPENAI_MODEL, StoredLog, assistant_text

HELLO = [{"role": "user", "content": "hi there"}]

# The peer's own warning: its legacy logger turns the provider response into JSON with
# pydantic's deprecated ``.dict()``.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The `dict` method is deprecated:pydantic.warnings.PydanticDeprecatedSince20"
)


def check(record: dict[str, Any], provider: str, model: str, text: str) -> None:
    assert (record["provider"], record["model"]) == (provider, model)
    assert record["status"] == "SUCCESS"
    assert record["output_tokens"] > 0
    assert assistant_text(record) == text
    assert record["prompt_blueprint"]["prompt_template"]["messages"][0]["role"] == "user"


def test_the_openai_proxy_logs_a_call_with_its_tags_and_returns_the_id(
    pl: PromptLayer, stored: StoredLog
) -> None:
    client = pl.openai.OpenAI()
    response, request_id = client.chat.completions.create(
        model=OPENAI_MODEL, messages=HELLO, pl_tags=["legacy"], return_pl_id=True
    )
    record = stored.request(request_id)
    check(record, "openai", OPENAI_MODEL, response.choices[0].message.content)
    assert record["tags"] == ["legacy"]
    assert record["function_name"] == "openai.OpenAI.chat.completions.create"


def test_the_anthropic_proxy_logs_a_call_and_returns_the_id(
    pl: PromptLayer, stored: StoredLog
) -> None:
    client = pl.anthropic.Anthropic()
    response, request_id = client.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=64, messages=HELLO, return_pl_id=True
    )
    check(stored.request(request_id), "anthropic", ANTHROPIC_MODEL, response.content[0].text)
