"""A signed-in dashboard visitor for HTTP-level tests, and helpers that fill the log."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp.test_utils import TestClient

KEY = "pl_test_dashboard_key"
OTHER_KEY = "pl_test_dashboard_other"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')


def chat(text: str, role: str = "user") -> dict[str, Any]:
    return {
        "type": "chat",
        "messages": [{"role": role, "content": [{"type": "text", "text": text}]}],
    }


class Visitor:
    """A browser-less visitor: keeps cookies, reads form tokens out of pages."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str, *, follow: bool = True) -> tuple[int, str]:
        async with self.client.get(path, allow_redirects=follow) as response:
            text = await response.text()
            found = _CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return response.status, text

    async def post(
        self, path: str, data: dict[str, str], *, csrf: bool = True, follow: bool = True
    ) -> tuple[int, str]:
        form = {**data, "csrf_token": self.csrf} if csrf else dict(data)
        async with self.client.post(path, data=form, allow_redirects=follow) as response:
            return response.status, await response.text()

    async def sign_in(self, key: str = KEY) -> tuple[int, str]:
        _, page = await self.get("/dashboard/signin")
        token = _SIGNIN.search(page)
        assert token, page
        status, text = await self.post(
            "/dashboard/signin",
            {"signin_token": token.group(1), "api_key": key, "next": "/dashboard/"},
            csrf=False,
        )
        found = _CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return status, text

    async def api(self, path: str, body: Any, *, key: str = KEY) -> Any:
        async with self.client.post(path, json=body, headers={"X-API-KEY": key}) as response:
            answer = await response.json()
            assert response.status < 300, answer
            return answer

    async def api_list(self, *, key: str = KEY) -> list[dict[str, Any]]:
        """The workspace's keys through the API (revoked ones too)."""
        path = "/promptrun/v1/keys?include_revoked=true"
        async with self.client.get(path, headers={"X-API-KEY": key}) as response:
            assert response.status == 200, await response.text()
            return list((await response.json())["items"])

    async def publish(self, name: str, text: str, **extra: Any) -> Any:
        version = {
            "prompt_template": chat(text),
            "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
            **extra,
        }
        return await self.api(
            "/rest/prompt-templates",
            {"prompt_template": {"prompt_name": name}, "prompt_version": version},
        )

    async def log(self, **fields: Any) -> int:
        """Log a request with ``/log-request``; ``fields`` override a plain successful one."""
        now = time.time()
        body = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "input": chat("What is the capital of France?"),
            "output": chat("Paris.", role="assistant"),
            "request_start_time": now - 0.25,
            "request_end_time": now,
            "input_tokens": 1000,
            "output_tokens": 500,
            **fields,
        }
        key = body.pop("key", KEY)
        answer = await self.api("/log-request", body, key=key)
        return int(answer["id"])
