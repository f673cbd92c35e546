"""The keys page and signing in: admin sessions manage keys, sign-in attempts are limited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.store.base import SigninPolicy

from ._dash import KEY, OTHER_KEY, Visitor

pytestmark = pytest.mark.anyio

_NEW_KEY = re.compile(r'<code id="new-key-value">(pl_[0-9a-f]{48})</code>')


async def api_status(visitor: Visitor, key: str) -> int:
    async with visitor.client.get("/prompt-templates", headers={"X-API-KEY": key}) as answer:
        return answer.status


async def make_key(visitor: Visitor, name: str, role: str = "member") -> dict[str, Any]:
    answer = await visitor.api("/promptrun/v1/keys", {"name": name, "role": role})
    return answer  # type: ignore[no-any-return]


def another(visitor: Visitor) -> Visitor:
    """A second browser on the same server: its own cookies."""
    return Visitor(TestClient(visitor.client.server))


async def test_an_admin_creates_a_key_on_the_page_and_it_is_shown_only_there(
    signed_in: Visitor,
) -> None:
    status, page = await signed_in.get("/dashboard/keys")
    assert status == 200
    assert 'href="/dashboard/keys" aria-current="page">Keys</a>' in page
    assert "this session" in page and "--api-key" in page
    status, page = await signed_in.post("/dashboard/keys", {"name": "<b>ci</b>", "role": "admin"})
    assert status == 200, page
    found = _NEW_KEY.search(page)
    assert found, page
    key = found.group(1)
    assert "shown only this once" in page and "&lt;b&gt;ci&lt;/b&gt;" in page
    assert "<b>ci</b>" not in page
    assert await api_status(signed_in, key) == 200
    _, again = await signed_in.get("/dashboard/keys")
    assert key not in again and "…" + key[-4:] in again


async def test_revoking_on_the_page_refuses_the_key_and_ends_its_sessions(
    signed_in: Visitor,
) -> None:
    made = await make_key(signed_in, "temp")
    other = another(signed_in)
    await other.client.start_server()
    try:
        status, _ = await other.sign_in(made["key"])
        assert status == 200
        assert (await other.get("/dashboard/requests"))[0] == 200
        key_id = made["api_key"]["id"]
        status, page = await signed_in.post(f"/dashboard/keys/{key_id}/revoke", {})
        assert status == 200 and f"Revoked key {key_id}" in page
        assert await api_status(signed_in, made["key"]) == 401
        status, page = await other.get("/dashboard/requests")
        assert "Sign in to promptrun" in page  # its session ended with the key
        status, page = await other.sign_in(made["key"])
        assert status == 401 and "revoked" in page
    finally:
        await other.client.session.close()


async def test_a_member_session_has_no_keys_page(signed_in: Visitor) -> None:
    member = await make_key(signed_in, "viewer")
    other = another(signed_in)
    await other.client.start_server()
    try:
        status, page = await other.sign_in(member["key"])
        assert status == 200 and "/dashboard/keys" not in page
        status, page = await other.get("/dashboard/keys")
        assert status == 403 and "for admin keys" in page
        status, page = await other.post("/dashboard/keys", {"name": "mine", "role": "admin"})
        assert status == 403
        assert "mine" not in str(await signed_in.api_list())
    finally:
        await other.client.session.close()


async def test_keys_pages_refuse_forms_without_the_csrf_token(signed_in: Visitor) -> None:
    status, _ = await signed_in.post("/dashboard/keys", {"name": "x"}, csrf=False)
    assert status == 403
    assert "x" not in [k["name"] for k in await signed_in.api_list()]


async def test_the_last_admin_and_another_workspaces_keys_cannot_be_revoked_here(
    signed_in: Visitor,
) -> None:
    keys = await signed_in.api_list()
    mine = next(k for k in keys if k["current"])
    status, page = await signed_in.post(f"/dashboard/keys/{mine['id']}/revoke", {})
    assert status == 409 and "last admin key" in page
    theirs = (await signed_in.api_list(key=OTHER_KEY))[0]
    status, page = await signed_in.post(f"/dashboard/keys/{theirs['id']}/revoke", {})
    assert status == 404
    assert await api_status(signed_in, OTHER_KEY) == 200
    status, _ = await signed_in.post("/dashboard/keys/abc/revoke", {})
    assert status == 400


async def test_revoking_the_sessions_own_key_signs_it_out(signed_in: Visitor) -> None:
    second = await make_key(signed_in, "second admin", "admin")
    mine = next(k for k in await signed_in.api_list() if k["current"])
    _, page = await signed_in.post(f"/dashboard/keys/{mine['id']}/revoke", {}, follow=True)
    assert "Sign in to promptrun" in page
    assert await api_status(signed_in, KEY) == 401
    assert await api_status(signed_in, second["key"]) == 200


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Visitor]:
    """A dashboard whose sign-in waits a minute after five failures (no test outruns it)."""
    config = ServerConfig(
        db_path=tmp_path / "promptrun.db",
        api_keys=(KEY,),
        generate_key=False,
        sandbox=False,
        signin_policy=SigninPolicy(free=5, first_wait=60.0),
    )
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        yield Visitor(client)


async def test_sign_in_is_refused_with_429_after_five_failures_even_with_the_right_key(
    guarded: Visitor,
) -> None:
    for _ in range(4):
        status, page = await guarded.sign_in("pl_wrong_guess")
        assert status == 401 and "Wait" not in page
    status, page = await guarded.sign_in("pl_wrong_guess")
    assert status == 401 and "Wait 60 s before trying again" in page
    _, form = await guarded.get("/dashboard/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', form)
    assert token
    async with guarded.client.post(
        "/dashboard/signin",
        data={"signin_token": token.group(1), "api_key": KEY, "next": "/dashboard/"},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 429
        assert 59 <= int(answer.headers["Retry-After"]) <= 60
        assert "Too many failed sign-ins" in await answer.text()
        assert "promptrun_session" not in answer.cookies
    # The API is not the dashboard's sign-in: the key keeps working there.
    assert await api_status(guarded, KEY) == 200
