"""A handle on a running sandbox, for the tests in this folder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

CONTROL_KEY = "pl_sandbox_control_key"
KEYED = {"X-API-KEY": CONTROL_KEY}


@dataclass
class Sandbox:
    """A running sandbox: its base URL and a plain HTTP session to poke it with."""

    url: str
    http: aiohttp.ClientSession

    async def control(self, **body: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/_control", json=body, headers=KEYED) as response:
            assert response.status == 200, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def snapshot(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/_control", headers=KEYED) as response:
            result: dict[str, Any] = await response.json()
            return result

    async def post(
        self, path: str, data: bytes | str, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        async with self.http.post(f"{self.url}{path}", data=data, headers=headers) as response:
            return response.status, await response.json(), dict(response.headers)
