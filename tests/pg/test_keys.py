"""Keys and dashboard sessions across several ``promptrun serve`` processes on one database."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from yarl import URL

from promptrun.testing import ServerProcess

from ._cluster import PostgresCluster, run_sql
from .fixtures import DATABASE, schema_url

pytestmark = pytest.mark.anyio

KEY = "pl_keys_" + secrets.token_hex(12)
_SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def two(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on one new schema, started at once."""
    schema = f"keys_{os.getpid()}"
    run_sql(postgres_cluster.dsn(DATABASE), f"CREATE SCHEMA {schema}")
    url = schema_url(postgres_cluster, schema)
    tmp = tmp_path_factory.mktemp("keys")
    procs = [
        ServerProcess(tmp / "unused.db", api_key=KEY, args=["--db", url, "--no-sandbox"])
        for _ in range(2)
    ]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ServerProcess.start, procs))
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            try:
                proc.stop()
            finally:
                proc.close()
        run_sql(postgres_cluster.dsn(DATABASE), f"DROP SCHEMA {schema} CASCADE")


async def call(
    http: aiohttp.ClientSession, proc: ServerProcess, method: str, path: str,
    body: Any = None, key: str = KEY,
) -> tuple[int, Any]:  # fmt: skip
    async with http.request(
        method, proc.base_url + path, json=body, headers={"X-API-KEY": key}
    ) as response:
        return response.status, await response.json()


async def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_a_second(
    two: tuple[ServerProcess, ServerProcess],
) -> None:
    one, other = two
    timings = []
    async with aiohttp.ClientSession() as http:
        for round_ in range(3):
            status, made = await call(
                http, one, "POST", "/promptrun/v1/keys", {"name": f"r{round_}"}
            )
            assert status == 201, made
            key = made["key"]
            # Known to the other process, and so cached there, before it is revoked.
            for _ in range(3):
                assert (await call(http, other, "GET", "/prompt-templates", key=key))[0] == 200
            status, _ = await call(
                http, one, "POST", f"/promptrun/v1/keys/{made['api_key']['id']}/revoke"
            )
            assert status == 200
            revoked_at = time.monotonic()
            assert (await call(http, one, "GET", "/prompt-templates", key=key))[0] == 401
            with anyio.fail_after(5):
                while True:
                    status, _ = await call(http, other, "GET", "/prompt-templates", key=key)
                    if status == 401:
                        break
                    await anyio.sleep(0.01)
            timings.append(time.monotonic() - revoked_at)
    print(f"revocation reached the other process after {[round(t, 3) for t in timings]} s")
    assert max(timings) < 1.0


async def test_a_dashboard_session_made_by_one_process_works_on_the_other_until_signed_out(
    two: tuple[ServerProcess, ServerProcess],
) -> None:
    one, other = two
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(one.base_url + "/dashboard/signin") as page:
            token = _SIGNIN.search(await page.text())
        assert token
        async with http.post(
            one.base_url + "/dashboard/signin",
            data={"signin_token": token.group(1), "api_key": KEY, "next": "/dashboard/"},
        ) as signed:
            assert signed.status == 200
        session = jar.filter_cookies(URL(one.base_url + "/dashboard/"))["promptrun_session"].value
        cookies = {"promptrun_session": session}
        # Another process, another port: the same cookie (a browser behind a load balancer).
        async with aiohttp.ClientSession(cookies=cookies) as elsewhere:
            async with elsewhere.get(other.base_url + "/dashboard/keys") as page:
                text = await page.text()
                assert page.status == 200 and "API keys" in text
            csrf = _CSRF.search(text)
            assert csrf
            async with elsewhere.post(
                other.base_url + "/dashboard/signout", data={"csrf_token": csrf.group(1)}
            ) as out:
                assert out.status == 200 and "Sign in to promptrun" in await out.text()
        async with (
            aiohttp.ClientSession(cookies=cookies) as again,
            again.get(one.base_url + "/dashboard/keys", allow_redirects=False) as page,
        ):
            assert page.status == 303
            assert page.headers["Location"].startswith("/dashboard/signin")


async def test_sign_in_failures_count_across_processes(
    two: tuple[ServerProcess, ServerProcess],
) -> None:
    one, other = two
    statuses = []
    # From an address of its own (all of 127/8 is loopback): the other tests sign in too.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.9", 0))
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
        for attempt in range(6):
            proc = (one, other)[attempt % 2]
            async with http.get(proc.base_url + "/dashboard/signin") as page:
                token = _SIGNIN.search(await page.text())
            assert token
            async with http.post(
                proc.base_url + "/dashboard/signin",
                data={"signin_token": token.group(1), "api_key": "pl_guess_" + str(attempt)},
            ) as answer:
                statuses.append(answer.status)
    # Five failures from this address, through either process; then a wait for both.
    assert statuses == [401, 401, 401, 401, 401, 429]


def test_the_processes_share_one_key_secret(two: tuple[ServerProcess, ServerProcess]) -> None:
    one, other = two
    assert (
        "keys: workspace 'default': 1 active (1 admin, 0 member)" in one.output() + other.output()
    )
    assert Path(one.db_path).name == "unused.db"
