"""``promptrun keys``: through a server with an admin key, and straight on its database."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from promptrun.testing import RunningServer, ServerProcess

from .conftest import Cli

_KEY = re.compile(r"pl_[0-9a-f]{48}")


def status_with(base_url: str, key: str) -> int:
    request = urllib.request.Request(base_url + "/prompt-templates", headers={"X-API-KEY": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_until_refused(base_url: str, key: str) -> None:
    """Until the server refuses ``key`` (its key cache re-reads the database; 30 s: a hang)."""
    deadline = time.monotonic() + 30
    while status_with(base_url, key) != 401:
        if time.monotonic() > deadline:
            pytest.fail(f"{key[:8]}… still accepted 30 s after it was revoked")
        time.sleep(0.02)


def test_create_prints_the_key_alone_and_list_shows_it_without_the_key(
    cli: Cli, served: RunningServer
) -> None:
    made = cli("keys", "create", "ci runner")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert _KEY.fullmatch(key), made.stdout
    assert re.search(r"created key \d+ 'ci runner' \(member, workspace 'default'\)", made.stderr)
    assert "shown only this once" in made.stderr
    assert status_with(served.base_url, key) == 200
    listed = cli("keys", "list")
    assert listed.returncode == 0 and "'ci runner'  member  …" + key[-4:] in listed.stdout
    assert key not in listed.stdout and "(this key)" in listed.stdout
    rows = [json.loads(line) for line in cli("keys", "list", "--json").stdout.splitlines()]
    assert {"id", "name", "role", "hint", "last_used_at", "revoked_at"} <= rows[0].keys()
    assert key not in json.dumps(rows)


def test_a_member_key_cannot_manage_keys_and_the_exit_is_1(cli: Cli) -> None:
    member = cli("keys", "create", "app").stdout.strip()
    done = cli("keys", "list", env={"PROMPTLAYER_API_KEY": member})
    assert done.returncode == 1
    assert "needs an admin key" in done.stderr and "member key" in done.stderr


def test_revoke_makes_the_server_refuse_the_key(cli: Cli, served: RunningServer) -> None:
    key = cli("keys", "create", "leaked").stdout.strip()
    key_id = next(
        row["id"]
        for row in map(json.loads, cli("keys", "list", "--json").stdout.splitlines())
        if row["hint"] == "…" + key[-4:]
    )
    done = cli("keys", "revoke", str(key_id))
    assert done.returncode == 0, done.stderr
    assert f"revoked key {key_id} 'leaked'" in done.stdout
    assert status_with(served.base_url, key) == 401
    listed = cli("keys", "list", "--revoked").stdout
    assert re.search(rf"#{key_id} .*revoked \d{{4}}-", listed)


def test_on_the_database_a_new_workspace_gets_its_admin_and_revocation_reaches_the_server(
    cli: Cli, served: RunningServer
) -> None:
    db = str(served.db_path)
    made = cli("keys", "create", "boss", "--db", db, "--workspace", "team-cli")
    assert made.returncode == 0, made.stderr
    assert "(admin, workspace 'team-cli')" in made.stderr
    key = made.stdout.strip()
    assert status_with(served.base_url, key) == 200
    rows = [json.loads(x) for x in cli("keys", "list", "--db", db, "--json").stdout.splitlines()]
    assert {"default", "team-cli"} <= {row["workspace"] for row in rows}
    boss = next(row for row in rows if row["workspace"] == "team-cli")
    member = cli("keys", "create", "helper", "--db", db, "--workspace", "team-cli")
    helper = member.stdout.strip()
    assert "(member, workspace 'team-cli')" in member.stderr
    refused = cli("keys", "revoke", str(boss["id"]), "--db", db)
    assert refused.returncode == 1 and "last admin key" in refused.stderr
    helper_id = next(
        row["id"]
        for row in map(json.loads, cli("keys", "list", "--db", db, "--json").stdout.splitlines())
        if row["name"] == "helper"
    )
    assert status_with(served.base_url, helper) == 200
    assert cli("keys", "revoke", str(helper_id), "--db", db).returncode == 0
    wait_until_refused(served.base_url, helper)


def test_a_database_that_is_not_there_is_not_made_and_the_exit_is_2(
    cli: Cli, tmp_path: Path
) -> None:
    done = cli("keys", "list", "--db", str(tmp_path / "typo.db"))
    assert done.returncode == 2 and "no database at" in done.stderr
    assert not (tmp_path / "typo.db").exists()
    both = cli("keys", "list", "--db", "x.db", "--api-key", "k")
    assert both.returncode == 2 and "not both" in both.stderr
    assert cli("keys", "revoke", "abc").returncode == 2
    assert cli("keys", "create", " ").returncode == 2


def test_restarting_with_other_keys_says_the_old_ones_still_work_until_revoked(
    cli: Cli, tmp_path: Path
) -> None:
    db = tmp_path / "restart.db"
    first, second = "pl_first_" + "a" * 20, "pl_second_" + "b" * 20
    with ServerProcess(db, api_key=first) as one:
        assert "--api-key gave key 1 …aaaa" in one.output()
    with ServerProcess(db, api_key=second) as two:
        said = two.output()
        assert "WARNING keys: 1 key(s) given to --api-key at an earlier start" in said
        assert "key 1 …aaaa" in said and f"promptrun keys revoke ID --db {db}" in said
        assert status_with(two.base_url, first) == 200
        # The first key is the workspace's only admin: another admin first, then revoke it.
        refused = cli("keys", "revoke", "1", "--db", str(db))
        assert refused.returncode == 1 and "--role admin" in refused.stderr
        assert cli("keys", "create", "ops", "--role", "admin", "--db", str(db)).returncode == 0
        assert cli("keys", "revoke", "1", "--db", str(db)).returncode == 0
        wait_until_refused(two.base_url, first)
    with ServerProcess(db, api_key=second) as three:
        assert "STILL WORK" not in three.output()
    with ServerProcess(db, api_key=first) as four:
        said = four.output()
        assert "which was REVOKED on" in said and "it stays refused" in said
        assert status_with(four.base_url, first) == 401


def test_help_names_the_keys_command_and_its_actions(cli: Cli) -> None:
    assert "keys" in cli("--help").stdout
    done = cli("keys", "--help")
    assert done.returncode == 0
    for action in ("list", "create", "revoke"):
        assert action in done.stdout


def test_api_key_on_the_command_line_leaves_the_environment_key_out(tmp_path: Path) -> None:
    given, exported = "pl_given_" + "c" * 20, "pl_exported_" + "d" * 20
    env = {**os.environ, "PROMPTLAYER_API_KEY": exported}
    with ServerProcess(tmp_path / "one.db", api_key=given, env=env) as served:
        said = served.output()
        assert status_with(served.base_url, given) == 200
        assert status_with(served.base_url, exported) == 401
    assert "keys: --api-key gave key 1 …cccc" in said
    assert "PROMPTLAYER_API_KEY" not in said.split("listening on")[0]
    assert "key 2" not in said


def test_without_api_key_the_environment_key_is_used_and_named_as_the_source(
    tmp_path: Path,
) -> None:
    exported = "pl_exported_" + "e" * 20
    env = {**os.environ, "PROMPTLAYER_API_KEY": exported}
    with ServerProcess(tmp_path / "two.db", generate_key=True, env=env) as served:
        said = served.output()
        assert status_with(served.base_url, exported) == 200
    assert "keys: PROMPTLAYER_API_KEY gave key 1 …eeee" in said
