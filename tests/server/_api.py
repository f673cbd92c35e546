"""A small JSON client for server tests, and sample templates."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

KEY = "pl_test_default_key"
OTHER_KEY = "pl_test_other_key"

CHAT = {
    "type": "chat",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hello {name}, about {topic}"}]},
    ],
}
OPENAI_MODEL = {
    "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {"temperature": 0.5}}
}

_UNSET: Any = object()


class Api:
    """Calls the server under test; answers are ``(status, decoded JSON)``."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = KEY,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if key is not None:
            sent["X-API-KEY"] = key
        kwargs: dict[str, Any] = {"headers": sent}
        if data is not None:
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.client.request(method, path, **kwargs) as response:
            assert response.content_type == "application/json", await response.text()
            return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, answer = await self.call(method, path, body, **kwargs)
        assert status < 300, (status, answer)
        return answer

    async def publish(
        self,
        name: str = "greet",
        template: dict[str, Any] = _UNSET,
        metadata: dict[str, Any] = _UNSET,
        *,
        labels: list[str] | None = None,
        key: str = KEY,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "prompt_template": {"prompt_name": name, **extra},
            "prompt_version": {
                "prompt_template": CHAT if template is _UNSET else template,
                "metadata": OPENAI_MODEL if metadata is _UNSET else metadata,
            },
        }
        if labels is not None:
            body["release_labels"] = labels
        status, answer = await self.call("POST", "/rest/prompt-templates", body, key=key)
        assert status == 201, answer
        return answer  # type: ignore[no-any-return]

    async def fetch(self, name: str = "greet", key: str = KEY, **params: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/prompt-templates/{quote(name, safe='')}", params, key=key)

    async def requests(self, key: str = KEY, **query: Any) -> dict[str, Any]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return await self.ok("GET", f"/promptrun/v1/requests?{params}", key=key)  # type: ignore[no-any-return]

    async def request(self, ref: int | str, key: str = KEY) -> dict[str, Any]:
        return await self.ok("GET", f"/promptrun/v1/requests/{ref}", key=key)  # type: ignore[no-any-return]


def track_body(**overrides: Any) -> dict[str, Any]:
    """A /track-request body as the peer SDK's run() sends it after an OpenAI chat call."""
    body: dict[str, Any] = {
        "function_name": "openai.chat.completions.create",
        "provider_type": "openai",
        "args": [],
        "kwargs": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hello Ada"}],
            "temperature": 0.5,
            "stream": False,
        },
        "tags": ["t1"],
        "request_start_time": 1_700_000_000.0,
        "request_end_time": 1_700_000_001.5,
        "metadata": {"user": "u1"},
        "prompt_id": None,
        "prompt_version": None,
        "prompt_input_variables": {"name": "Ada"},
        "group_id": None,
        "return_prompt_blueprint": True,
        "span_id": None,
        "request_response": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi Ada"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        },
    }
    body.update(overrides)
    return body


def log_body(**overrides: Any) -> dict[str, Any]:
    """A /log-request body as the peer SDK's log_request() sends it."""
    body: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "input": {
            "type": "chat",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Write a poem"}]}],
        },
        "output": {
            "type": "chat",
            "messages": [{"role": "assistant", "content": [{"type": "text", "text": "Roses"}]}],
        },
        "request_start_time": 1_700_000_000.0,
        "request_end_time": 1_700_000_002.0,
        "parameters": {"temperature": 1},
        "tags": ["manual"],
        "metadata": {"source": "test"},
        "prompt_name": None,
        "prompt_version_number": None,
        "prompt_input_variables": {},
        "input_tokens": 5,
        "output_tokens": 7,
        "price": 0.01,
        "function_name": "",
        "score": 0,
        "prompt_id": None,
        "score_name": None,
        "api_type": None,
        "status": "SUCCESS",
        "error_type": None,
        "error_message": None,
    }
    body.update(overrides)
    return body
