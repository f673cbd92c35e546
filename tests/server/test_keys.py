"""/promptrun/v1/keys: admin keys manage their workspace's keys; member keys use the API."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.auth import hash_key

from ._api import KEY, OTHER_KEY, Api

pytestmark = pytest.mark.anyio

KEYS = "/promptrun/v1/keys"


async def create(api: Api, name: str, role: str | None = None, key: str = KEY) -> dict[str, Any]:
    body = {"name": name} if role is None else {"name": name, "role": role}
    status, answer = await api.call("POST", KEYS, body, key=key)
    assert status == 201, answer
    return answer  # type: ignore[no-any-return]


async def listed(api: Api, key: str = KEY, **query: str) -> list[dict[str, Any]]:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return (await api.ok("GET", KEYS + suffix, key=key))["items"]  # type: ignore[no-any-return]


async def test_an_admin_creates_a_member_key_that_is_shown_once_and_works(api: Api) -> None:
    made = await create(api, "ci")
    key, view = made["key"], made["api_key"]
    assert re.fullmatch(r"pl_[0-9a-f]{48}", key)
    assert (view["name"], view["role"], view["workspace"], view["source"]) == (
        "ci", "member", "default", "created",
    )  # fmt: skip
    assert view["hint"] == "…" + key[-4:] and view["revoked_at"] is None
    assert (await api.call("GET", "/prompt-templates", key=key))[0] == 200
    items = await listed(api)
    assert [i["name"] for i in items if i["current"]] == ["--api-key"]
    assert view["id"] in [i["id"] for i in items]
    status, raw = await api.call("GET", KEYS)
    assert status == 200 and key not in str(raw) and key[3:] not in str(raw)


async def test_a_member_key_uses_the_api_but_cannot_manage_keys(api: Api) -> None:
    member = (await create(api, "app"))["key"]
    admin_id = next(i["id"] for i in await listed(api) if i["current"])
    for method, path, body in [
        ("GET", KEYS, None),
        ("POST", KEYS, {"name": "sneaky", "role": "admin"}),
        ("POST", f"{KEYS}/{admin_id}/revoke", None),
    ]:
        status, answer = await api.call(method, path, body, key=member)
        assert status == 403, (path, answer)
        assert "needs an admin key" in answer["message"]
    assert [i["name"] for i in await listed(api)].count("sneaky") == 0
    assert (await api.call("POST", "/create-group", {}, key=member))[0] == 200


async def test_keys_of_another_workspace_are_invisible_and_cannot_be_revoked(api: Api) -> None:
    mine = (await create(api, "mine"))["api_key"]
    theirs = await listed(api, key=OTHER_KEY)
    assert {i["workspace"] for i in theirs} == {"other"}
    assert mine["id"] not in [i["id"] for i in theirs]
    status, answer = await api.call("POST", f"{KEYS}/{mine['id']}/revoke", key=OTHER_KEY)
    assert status == 404 and "not found in this workspace" in answer["message"]
    assert mine["id"] in [i["id"] for i in await listed(api)]


async def test_a_revoked_key_is_refused_at_once_and_listed_only_when_asked(api: Api) -> None:
    made = await create(api, "leaked")
    key, key_id = made["key"], made["api_key"]["id"]
    assert (await api.call("GET", "/prompt-templates", key=key))[0] == 200
    revoked = await api.ok("POST", f"{KEYS}/{key_id}/revoke")
    assert revoked["api_key"]["revoked_at"] is not None
    status, answer = await api.call("GET", "/prompt-templates", key=key)
    assert status == 401 and "revoked keys are refused" in answer["message"]
    assert key_id not in [i["id"] for i in await listed(api)]
    again = [i for i in await listed(api, include_revoked="true") if i["id"] == key_id]
    assert again[0]["revoked_at"] == revoked["api_key"]["revoked_at"]
    # Revoking twice is harmless.
    assert (await api.ok("POST", f"{KEYS}/{key_id}/revoke"))["api_key"] == revoked["api_key"]


async def test_the_last_admin_key_is_kept_until_another_admin_exists(api: Api) -> None:
    me = next(i for i in await listed(api) if i["current"])
    status, answer = await api.call("POST", f"{KEYS}/{me['id']}/revoke")
    assert status == 409 and "last admin key" in answer["message"]
    second = await create(api, "second admin", "admin")
    assert second["api_key"]["role"] == "admin"
    assert (await api.ok("POST", f"{KEYS}/{me['id']}/revoke", key=second["key"]))["success"]
    assert (await api.call("GET", KEYS))[0] == 401
    assert [i["role"] for i in await listed(api, key=second["key"])] == ["admin"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": ""}, "Expected `str` of length >= 1"),
        ({"name": "x" * 101}, "Expected `str` of length <= 100"),
        ({"name": "   "}, "1 to 100 characters"),
        ({"name": "bad\u202ename"}, "control or invisible characters"),
        ({"name": "a", "role": "root"}, "Invalid enum value 'root'"),
        ({"name": "a", "extra": 1}, "unknown field `extra`"),
        ({}, "missing required field `name`"),
    ],
)
async def test_a_bad_key_request_is_a_400_that_says_why(
    api: Api, body: dict[str, Any], message: str
) -> None:
    status, answer = await api.call("POST", KEYS, body)
    assert status == 400
    assert message in answer["message"]


@pytest.mark.parametrize("ref", ["0", "abc", "99999999999999999999", "-1"])
async def test_a_key_id_that_is_not_a_positive_integer_is_a_400(api: Api, ref: str) -> None:
    status, answer = await api.call("POST", f"{KEYS}/{ref}/revoke")
    assert status == 400 and "positive integer" in answer["message"]


async def test_a_keys_last_use_is_recorded(api: Api) -> None:
    made = await create(api, "used")
    await api.call("GET", "/prompt-templates", key=made["key"])
    with anyio.fail_after(10):
        while True:
            found = [i for i in await listed(api) if i["id"] == made["api_key"]["id"]]
            if found[0]["last_used_at"] is not None:
                break
            await anyio.sleep(0.05)
    assert found[0]["last_used_at"] >= found[0]["created_at"]


async def test_keys_stored_by_an_older_promptrun_keep_working_and_become_hmacs(
    tmp_path: Path,
) -> None:
    fixtures = Path(__file__).parents[1] / "store" / "fixtures"
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript((fixtures / "sqlite-main-v3.sql").read_text())
    config = ServerConfig(db_path=path, generate_key=False, sandbox=False)
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        api = Api(client)
        assert (await api.call("GET", "/prompt-templates", key="key-default"))[0] == 200
        items = await listed(api, key="key-other")
        assert [(i["workspace"], i["role"], i["source"]) for i in items] == [
            ("other", "admin", "migrated")
        ]
        assert (await api.call("GET", "/prompt-templates", key=hash_key("key-default")))[0] == 401
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT key_hash, hash_kind FROM api_keys").fetchall()
    assert {kind for _, kind in stored} == {"hmac"}
    assert hash_key("key-default") not in {digest for digest, _ in stored}
