"""Records for the contract tests."""

from __future__ import annotations

from typing import Any

import msgspec

from promptrun.server.store.base import NewVersion, RequestRow

CHAT = {
    "type": "chat",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello {name}"}]}],
}


def row(client_id: str | None = None, **fields: Any) -> RequestRow:
    values: dict[str, Any] = {
        "kind": "track",
        "client_request_id": client_id,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "function_name": "openai.chat.completions.create",
        "start_time": 1_700_000_000.0,
        "end_time": 1_700_000_001.0,
        "body": '{"kwargs": {}}',
        "blueprint": msgspec.json.encode(
            {"prompt_template": {"type": "chat", "messages": [{"content": "Hello Ada"}]}}
        ).decode(),
        "tags": '["t1"]',
    }
    values.update(fields)
    return RequestRow(**values)


def version(name: str = "greet", **fields: Any) -> NewVersion:
    values: dict[str, Any] = {"prompt_name": name, "prompt_template": CHAT, "metadata": {}}
    values.update(fields)
    return NewVersion(**values)
