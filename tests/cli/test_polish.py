"""The command line as a user meets it: --version, usage errors that name the option, defaults
in --help, --json everywhere, tables with colour on a terminal only, `logs show` by either id,
the dashboard's cost and links, idempotent pushes, quickstart, workflow runs that say how they
went."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptrun._cli._output import cost_text
from promptrun.server.dashboard._format import usd
from promptrun.server.dashboard._prices import PriceTable
from promptrun.testing import RunningServer

from .conftest import Cli, on_a_terminal
from .test_cli import body, push, said, unique


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


# -- the parser ------------------------------------------------------------------------------


def test_version_prints_the_installed_version(cli: Cli) -> None:
    from promptrun import __version__

    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"promptrun {__version__}"


@pytest.mark.parametrize(
    ("args", "said_"),
    [
        (("logs", "--limit", "abc"), "promptrun logs: error: --limit: expected a whole number, got 'abc'"),
        (("logs", "--limit", "0"), "--limit: expected a whole number from 1 to 1000, got 0"),
        (("logs", "--interval", "soon"), "--interval: expected a number of seconds, got 'soon'"),
        (("run", "x", "--version", "two"), "promptrun run: error: --version: expected a whole number, got 'two'"),
        (("serve", "--port", "70000"), "--port: expected a whole number from 0 to 65535, got 70000"),
        (("workflows", "run", "x", "--timeout", "-1"), "--timeout: expected a number of seconds more than 0, got -1"),
        (("templates", "pull", "x", "--format", "xml"), "--format: invalid choice: 'xml'"),
    ],
)  # fmt: skip
def test_a_usage_error_names_the_option_and_what_it_expected(
    cli: Cli, args: tuple[str, ...], said_: str
) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert said_ in done.stderr
    assert "invalid _" not in done.stderr and "argument " not in done.stderr


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (("logs",), "(default: 20)"),
        (("logs",), "(default: 1.0)"),
        (("workflows", "run"), "(default 3600)"),
        (("serve",), "(default: 8765)"),
    ],
)
def test_help_shows_the_defaults(cli: Cli, command: tuple[str, ...], shown: str) -> None:
    done = cli(*command, "--help")
    assert done.returncode == 0
    assert shown in " ".join(done.stdout.split())


def test_serve_help_shows_a_default_for_every_option_that_takes_a_value(cli: Cli) -> None:
    done = cli("serve", "--help")
    assert done.returncode == 0
    blocks: dict[str, str] = {}
    option = ""
    for line in done.stdout.splitlines():
        stripped = line.strip()
        if line.startswith("  --"):
            option = stripped.split()[0]
            blocks[option] = stripped
        elif option and line.startswith(" " * 10):
            blocks[option] += " " + stripped
        else:
            option = ""
    # "--port PORT", "--api-key [WORKSPACE:]KEY": options followed by a metavar take a value.
    valued = {
        name: text
        for name, text in blocks.items()
        if len(text.split()) > 1 and (text.split()[1].isupper() or "[" in text.split()[1])
    }
    assert "--sandbox-chunks" in valued and "--max-body-bytes" in valued
    missing = [name for name, text in valued.items() if "default" not in text.lower()]
    assert missing == []


@pytest.mark.parametrize(
    "command",
    [
        ("run",), ("quickstart",), ("templates", "push"), ("templates", "list"),
        ("templates", "show"), ("logs",), ("logs", "show"), ("workflows", "run"),
    ],
)  # fmt: skip
def test_every_command_that_prints_data_takes_json(cli: Cli, command: tuple[str, ...]) -> None:
    assert "--json" in cli(*command, "--help").stdout


# -- tables and colour ---------------------------------------------------------------------


def test_the_request_table_is_coloured_on_a_terminal_only_and_never_with_no_color(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = unique("colour")
    push(cli, tmp_path, body(name))
    assert cli("run", name, "--var", "name=Ada").returncode == 0
    args = ["logs", "--prompt", name]
    done, shown = on_a_terminal(args, {**cli_env, "NO_COLOR": ""})
    assert done.returncode == 0
    assert "\x1b[32mSUCCESS" in shown  # green
    assert "\x1b[1mID" in shown  # a bold header
    done, plain = on_a_terminal(args, {**cli_env, "NO_COLOR": "1"})
    assert done.returncode == 0 and "\x1b[" not in plain and "SUCCESS" in plain
    piped = cli(*args, env={"NO_COLOR": ""})
    assert "\x1b[" not in piped.stdout and "SUCCESS" in piped.stdout


def test_templates_list_is_a_table_with_a_header(cli: Cli, tmp_path: Path) -> None:
    name = unique("listed")
    push(cli, tmp_path, body(name, commit_message="first\nmore", release_labels=["prod"]))
    header, *rows = cli("templates", "list").stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "MODEL", "LABELS", "COMMIT"]
    row = next(r for r in rows if r.startswith(name + " "))
    assert row.split() == [name, "v1", "openai/gpt-4o-mini", "prod", "first"]


# -- ids, cost, metadata, links --------------------------------------------------------------


def run_one(cli: Cli, tmp_path: Path, name: str) -> dict[str, Any]:
    push(cli, tmp_path, body(name))
    done = cli("run", name, "--var", "name=Ada", "--metadata", "user=ada", "--json")
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_logs_show_accepts_the_server_id_with_or_without_hash_and_the_client_id(
    cli: Cli, tmp_path: Path
) -> None:
    answer = run_one(cli, tmp_path, unique("show"))
    server_id, client_id = answer["id"], answer["request_id"]
    assert isinstance(server_id, int) and client_id.startswith("req_")
    shown = [
        cli("logs", "show", ref, "--json") for ref in (f"#{server_id}", str(server_id), client_id)
    ]
    assert all(done.returncode == 0 for done in shown), [d.stderr for d in shown]
    items = [json.loads(done.stdout) for done in shown]
    assert all(item == items[0] for item in items)
    assert items[0]["id"] == server_id and items[0]["client_request_id"] == client_id
    # Options given before `show` count too.
    assert json.loads(cli("logs", "--json", "show", client_id).stdout) == items[0]
    text = cli("logs", "show", f"#{server_id}").stdout
    assert text.splitlines()[0].startswith(f"#{server_id}  {client_id}  ")
    assert "metadata:  user=ada" in text
    assert "[assistant]\nSandbox reply to: Say hello to Ada." in text


def test_logs_show_of_an_unknown_id_exits_1_and_says_so(cli: Cli) -> None:
    done = cli("logs", "show", "#999999")
    assert done.returncode == 1
    assert "not found" in done.stderr


def test_the_cli_shows_the_cost_the_dashboard_shows(
    cli: Cli, tmp_path: Path, served: RunningServer
) -> None:
    answer = run_one(cli, tmp_path, unique("cost"))
    (item,) = json_lines(cli("logs", "--json", "--limit", "1").stdout)
    assert item["id"] == answer["id"]
    expected = PriceTable().cost("gpt-4o-mini", item["input_tokens"], item["output_tokens"])
    assert expected and item["cost"] == pytest.approx(expected)
    assert item["cost_estimated"] is True
    assert answer["cost"] == item["cost"]
    assert item["metadata"] == {"user": "ada"}
    detail = json.loads(cli("logs", "show", str(item["id"]), "--json").stdout)
    assert f"cost:      ~{usd(detail['cost'])}" in cli("logs", "show", str(item["id"])).stdout
    page = _dashboard_page(served, f"/dashboard/requests/{item['id']}")
    assert usd(detail["cost"]) in page


def _dashboard_page(served: RunningServer, path: str) -> str:
    """A dashboard page as a signed-in browser gets it (the sign-in form's token included)."""
    import http.cookiejar
    import re
    from urllib.parse import urlencode

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(served.base_url + "/dashboard/signin", timeout=10) as form:
        token = re.search(r'name="signin_token" value="([^"]+)"', form.read().decode())
    assert token
    fields = {"signin_token": token.group(1), "api_key": served.api_key, "next": path}
    with opener.open(
        urllib.request.Request(served.base_url + "/dashboard/signin",
                               data=urlencode(fields).encode()),
        timeout=10,
    ) as page:  # fmt: skip
        text: str = page.read().decode()
    return text


@given(st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_the_cli_writes_dollars_as_the_dashboard_does(value: float) -> None:
    assert cost_text(value) == usd(value)
    assert cost_text(value, estimated=True) == "~" + usd(value)


def test_a_logged_price_wins_over_the_price_table(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    script = (
        "from promptrun import PromptLayer\n"
        "with PromptLayer() as pl:\n"
        "    r = pl.log_request('openai', 'gpt-4o', {'type': 'chat', 'messages': []},"
        " {'type': 'chat', 'messages': []}, 1.0, 2.0, price=0.25, input_tokens=10)\n"
        "    pl.flush()\n"
        "    print(r['request_id'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=cli_env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    item = json.loads(cli("logs", "show", done.stdout.strip(), "--json").stdout)
    assert (item["cost"], item["cost_estimated"]) == (0.25, False)


def test_run_prints_both_ids_the_cost_and_the_dashboard_link(
    cli: Cli, tmp_path: Path, served: RunningServer
) -> None:
    name = unique("link")
    push(cli, tmp_path, body(name))
    done = cli("run", name, "--var", "name=Ada")
    assert done.returncode == 0, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    client_id = line.split()[1]
    assert client_id.startswith("req_")
    server_id = line.split("(#")[1].split(",")[0]
    assert line.endswith(f": {served.base_url}/dashboard/requests/{server_id}")
    assert ", ~$0.0000" in line


def test_push_links_each_version_to_its_dashboard_page(
    cli: Cli, tmp_path: Path, served: RunningServer
) -> None:
    name = unique("pushlink")
    path = tmp_path / "t.json"
    path.write_text(json.dumps(body(name)))
    line = cli("templates", "push", str(path)).stdout.strip()
    assert line == f"pushed {name} v1  {served.base_url}/dashboard/prompt?name={name}&version=1"
    path.write_text(json.dumps(body(name, "Changed {name}")))
    (result,) = json_lines(cli("templates", "push", str(path), "--json").stdout)
    assert result["dashboard_url"].endswith(f"?name={name}&version=2")


# -- idempotent publishing -------------------------------------------------------------------


def test_pushing_unchanged_content_makes_no_version_and_says_unchanged(
    cli: Cli, tmp_path: Path
) -> None:
    name = unique("same")
    assert push(cli, tmp_path, body(name, release_labels=["prod"])) == [f"pushed {name} v1 [prod]"]
    again = body(name, release_labels=["prod"], commit_message="only the message differs")
    assert push(cli, tmp_path, again) == [f"unchanged {name} v1 [prod]"]
    shown = json.loads(cli("templates", "show", name, "--json").stdout)
    assert shown["version"] == 1
    assert push(cli, tmp_path, body(name, "New text {name}")) == [f"pushed {name} v2"]
    # Tags belong to the template, not to a version: new tags make no version.
    retagged = body(name, "New text {name}", tags=["new"])
    assert push(cli, tmp_path, retagged) == [f"unchanged {name} v2"]
    assert json.loads(cli("templates", "show", name, "--json").stdout)["tags"] == ["new"]
    assert push(cli, tmp_path, retagged) == [f"unchanged {name} v2"]


def test_an_unchanged_push_does_not_move_a_label_and_says_how_to(cli: Cli, tmp_path: Path) -> None:
    name = unique("label")
    push(cli, tmp_path, body(name, "one {name}", release_labels=["prod"]))
    push(cli, tmp_path, body(name, "two {name}"))
    path = tmp_path / "two.json"
    path.write_text(json.dumps(body(name, "two {name}", release_labels=["prod"])))
    done = cli("templates", "push", str(path))
    assert said(done.stdout) == [f"unchanged {name} v2"]
    assert "prod stay where they are" in done.stderr and "--force" in done.stderr
    prod = json.loads(cli("templates", "show", name, "--label", "prod", "--json").stdout)
    assert prod["version"] == 1
    forced = cli("templates", "push", str(path), "--force")
    assert said(forced.stdout) == [f"pushed {name} v3 [prod]"]


def test_pull_leaves_release_labels_out_unless_asked(cli: Cli, tmp_path: Path) -> None:
    name = unique("pull")
    push(cli, tmp_path, body(name, release_labels=["prod", "staging"]))
    plain = json.loads(cli("templates", "pull", name).stdout)
    assert "release_labels" not in plain
    labelled = json.loads(cli("templates", "pull", name, "--with-labels").stdout)
    assert labelled["release_labels"] == ["prod", "staging"]
    saved = tmp_path / "pulled.yaml"
    assert cli("templates", "pull", name, "-o", str(saved)).returncode == 0
    assert "release_labels" not in saved.read_text()
    # pull, edit, push: a new version, and prod does not move.
    saved.write_text(saved.read_text().replace("Say hello", "Say hi"))
    assert said(cli("templates", "push", str(saved)).stdout) == [f"pushed {name} v2"]
    prod = json.loads(cli("templates", "show", name, "--label", "prod", "--json").stdout)
    assert prod["version"] == 1


# -- quickstart and the shipped examples -----------------------------------------------------


def test_quickstart_publishes_the_examples_and_makes_a_first_logged_run(
    cli: Cli, cli_env: dict[str, str], served: RunningServer
) -> None:
    first = cli("quickstart")
    assert first.returncode == 0, first.stderr
    pushed = said(first.stdout)
    for example in ("greet", "haiku", "summarize"):
        assert any(
            line.split()[1] == example
            for line in pushed
            if line.startswith(("pushed", "unchanged"))
        )
    assert "Sandbox reply to: Say hello to Ada" in first.stdout
    assert "/dashboard/requests/" in first.stderr
    again = cli("quickstart", "--json")
    assert again.returncode == 0, again.stderr
    lines = json_lines(again.stdout)
    assert [x["unchanged"] for x in lines[:3]] == [True, True, True]
    assert lines[3]["text"].startswith("Sandbox reply to:") and lines[3]["id"]


def test_push_examples_publishes_the_templates_shipped_in_the_package(cli: Cli) -> None:
    from promptrun.examples import template_bodies

    done = cli("templates", "push", "--examples", "--json")
    assert done.returncode == 0, done.stderr
    names = [item["prompt_name"] for item in json_lines(done.stdout)]
    assert names == [b["prompt_name"] for b in template_bodies()] == ["greet", "haiku", "summarize"]


def test_push_with_nothing_to_push_exits_2(cli: Cli) -> None:
    done = cli("templates", "push")
    assert done.returncode == 2
    assert "--examples" in done.stderr


# -- workflows -------------------------------------------------------------------------------

TWO_OUTPUTS = {
    "input_variables": [],
    "nodes": [
        {"name": "fine", "type": "value", "configuration": {"value": "ok"},
         "is_output_node": True},
        {"name": "broken", "type": "code", "configuration": {"code": "return 1 / 0"},
         "is_output_node": True},
    ],
}  # fmt: skip


def publish_workflow(served: RunningServer, definition: dict[str, Any]) -> str:
    name = f"flow-{secrets.token_hex(3)}"
    request = urllib.request.Request(
        served.base_url + "/rest/workflows",
        data=json.dumps({"workflow_name": name, "definition": definition}).encode(),
        headers={"X-API-KEY": served.api_key, "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    return name


def test_all_outputs_exits_1_when_an_output_node_failed(cli: Cli, served: RunningServer) -> None:
    name = publish_workflow(served, TWO_OUTPUTS)
    done = cli("workflows", "run", name, "--all-outputs")
    assert done.returncode == 1
    assert "* fine: SUCCESS  ok" in done.stdout
    assert "* broken: FAILED" in done.stdout
    assert "output node 'broken' FAILED" in done.stderr
    as_json = cli("workflows", "run", name, "--all-outputs", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["broken"]["status"] == "FAILED"
    # Without --all-outputs the value of the output node that succeeded is the answer.
    plain = cli("workflows", "run", name)
    assert (plain.returncode, plain.stdout) == (0, "ok\n")


def test_workflows_run_says_its_execution_id_and_page_at_once(
    cli: Cli, served: RunningServer
) -> None:
    name = publish_workflow(served, TWO_OUTPUTS)
    done = cli("workflows", "run", name)
    first = done.stderr.splitlines()[0]
    assert first.startswith("execution #")
    execution_id = first.split("#")[1].split(":")[0]
    assert first.endswith(f"{served.base_url}/dashboard/workflows/executions/{execution_id}")
    request = urllib.request.Request(
        f"{served.base_url}/promptrun/v1/workflow-executions/{execution_id}",
        headers={"X-API-KEY": served.api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read())["workflow_name"] == name


def test_workflows_run_shows_progress_on_a_terminal(
    cli_env: dict[str, str], served: RunningServer
) -> None:
    slow = {
        "input_variables": [],
        "nodes": [{"name": "wait", "type": "code", "is_output_node": True,
                   "configuration": {"code": "import time\ntime.sleep(1.5)\nreturn 'done'"}}],
    }  # fmt: skip
    name = publish_workflow(served, slow)
    done, shown = on_a_terminal(["workflows", "run", name], cli_env, "stderr")
    assert done.returncode == 0 and done.stdout == b"done\n"
    assert "execution #" in shown
    assert "[RUNNING] 0 node(s) finished" in shown


def test_control_characters_from_the_server_are_shown_not_obeyed(cli: Cli, tmp_path: Path) -> None:
    name = unique("escape")
    push(cli, tmp_path, body(name, "Hi {name}\x1b]0;owned\x07"))
    done = cli("run", name, "--var", "name=\x1b[2JAda", "--metadata", "note=\x1b[31mred", "--json")
    assert done.returncode == 0, done.stderr
    request_id = json.loads(done.stdout)["request_id"]
    for args in (("logs", "show", request_id), ("logs", "--prompt", name),
                 ("templates", "show", name), ("run", name, "--var", "name=\x1b[2J")):  # fmt: skip
        shown = cli(*args)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout + shown.stderr, args
    text = cli("logs", "show", request_id).stdout
    assert "metadata:  note=\\x1b[31mred" in text
    assert "\\x1b]0;owned\\x07" in text
