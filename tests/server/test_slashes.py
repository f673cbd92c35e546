"""A base URL ending in "/" makes the peer SDK ask for ``//path``: served as ``/path``."""

from __future__ import annotations

from typing import Any

import pytest

from ._api import CHAT, KEY, OPENAI_MODEL, Api

pytestmark = pytest.mark.anyio


async def raw_call(api: Api, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    # Through the session with an absolute URL: TestClient would read "//x" as a host name.
    url = str(api.client.make_url("/")).rstrip("/") + path
    headers = {"X-API-KEY": KEY}
    async with api.client.session.request(method, url, json=body, headers=headers) as response:
        assert response.url.raw_path == path.partition("?")[0]
        return response.status, await response.json()


async def test_a_doubled_leading_slash_reaches_the_same_endpoints(api: Api) -> None:
    publish = {
        "prompt_template": {"prompt_name": "greet"},
        "prompt_version": {"prompt_template": CHAT, "metadata": OPENAI_MODEL},
        "release_labels": ["prod"],
    }
    status, published = await raw_call(api, "POST", "//rest/prompt-templates", publish)
    assert (status, published["version_number"]) == (201, 1)
    status, fetched = await raw_call(
        api, "POST", "//prompt-templates/greet", {"input_variables": {"name": "A", "topic": "B"}}
    )
    assert status == 200
    assert fetched["llm_kwargs"]["messages"][1]["content"] == "Hello A, about B"
    status, listed = await raw_call(api, "GET", "//prompt-templates?per_page=1&label=prod")
    assert (status, listed["per_page"], listed["total"]) == (200, 1, 1)
    status, group = await raw_call(api, "POST", "///create-group", {})
    assert status == 200
    assert isinstance(group["id"], int)


async def test_slashes_inside_a_template_name_are_not_merged(api: Api) -> None:
    await api.publish("a//b")
    status, fetched = await api.fetch("a//b")
    assert (status, fetched["prompt_name"]) == (200, "a//b")
    status, _ = await api.fetch("a/b")
    assert status == 404


async def test_a_doubled_slash_path_matching_nothing_is_still_a_json_404(api: Api) -> None:
    status, answer = await raw_call(api, "POST", "//no-such-endpoint", {})
    assert status == 404
    assert answer == {"success": False, "message": "no such endpoint: POST //no-such-endpoint"}
