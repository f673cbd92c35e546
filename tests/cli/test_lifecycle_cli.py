"""``promptrun templates label`` and ``promptrun workflows push`` against a running server."""

from __future__ import annotations

import json
from pathlib import Path

from promptrun.testing import RunningServer

from .conftest import Cli
from .test_cli import body, push, unique


def three_versions(cli: Cli, tmp_path: Path) -> str:
    name = unique("greet")
    push(cli, tmp_path, body(name, "one {name}", release_labels=["prod"]))
    push(cli, tmp_path, body(name, "two {name}"))
    push(cli, tmp_path, body(name, "three {name}"))
    return name


def label_of(cli: Cli, name: str, label: str) -> str:
    shown = cli("templates", "show", name, "--label", label, "--json")
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["version"])


def test_label_promotes_version_three_to_prod_and_rolls_it_back(cli: Cli, tmp_path: Path) -> None:
    name = three_versions(cli, tmp_path)
    done = cli("templates", "label", name, "prod", "--version", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{name}: moved prod from v1 to v3\n"
    assert label_of(cli, name, "prod") == "3"
    back = cli("templates", "label", name, "prod", "--version", "1")
    assert back.stdout == f"{name}: moved prod from v3 to v1\n"
    assert label_of(cli, name, "prod") == "1"
    again = cli("templates", "label", name, "prod", "--version", "1")
    assert again.stdout == f"{name}: prod was already on v1\n"
    listed = cli("templates", "list", "--json")
    latest = {t["prompt_name"]: t["version"] for t in json.loads(listed.stdout)}
    assert latest[name] == 3  # moving labels published nothing


def test_label_creates_lists_and_removes_labels(cli: Cli, tmp_path: Path) -> None:
    name = three_versions(cli, tmp_path)
    made = cli("templates", "label", name, "canary", "--version", "2")
    assert made.stdout == f"{name}: canary is now on v2 (new label)\n"
    listed = cli("templates", "label", name)
    assert listed.stdout.splitlines() == ["LABEL   VERSION", "canary  v2", "prod    v1"]
    as_json = json.loads(cli("templates", "label", name, "--json").stdout)
    assert [x["release_label"] for x in as_json["release_labels"]] == ["canary", "prod"]
    removed = cli("templates", "label", name, "canary", "--remove")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"{name}: removed canary (it was on v2)\n"
    missing = cli("templates", "label", name, "canary", "--remove")
    assert missing.returncode == 1
    assert "has no label 'canary'; its labels: prod" in missing.stderr


def test_label_json_gives_the_servers_answer(cli: Cli, tmp_path: Path) -> None:
    name = three_versions(cli, tmp_path)
    done = cli("templates", "label", name, "prod", "--version", "2", "--json")
    answer = json.loads(done.stdout)
    assert (answer["prompt_version_number"], answer["previous_version_number"]) == (2, 1)


def test_label_says_what_is_wrong_with_the_command_or_the_target(cli: Cli, tmp_path: Path) -> None:
    name = three_versions(cli, tmp_path)
    no_target = cli("templates", "label", name, "prod")
    assert no_target.returncode == 2
    assert "say where 'prod' goes: --version N" in no_target.stderr
    both = cli("templates", "label", name, "prod", "--version", "2", "--remove")
    assert both.returncode == 2
    zero = cli("templates", "label", name, "prod", "--version", "0")
    assert (zero.returncode, "versions are numbered from 1" in zero.stderr) == (2, True)
    nine = cli("templates", "label", name, "prod", "--version", "9")
    assert nine.returncode == 1
    assert f"'{name}' has no version 9; versions are 1..3" in nine.stderr
    unknown = cli("templates", "label", "no-such-template", "prod", "--version", "1")
    assert unknown.returncode == 1
    assert "promptrun templates label: error:" in unknown.stderr
    assert label_of(cli, name, "prod") == "1"


SHOUT = {
    "input_variables": ["who"],
    "nodes": [
        {
            "name": "shout",
            "type": "code",
            "configuration": {"code": "return who.upper()"},
            "inputs": {"who": "who"},
            "is_output_node": True,
        }
    ],
}


def test_workflows_push_publishes_a_definition_file_named_after_the_file(
    cli: Cli, tmp_path: Path, served: RunningServer
) -> None:
    name = unique("shout")
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(SHOUT))
    done = cli("workflows", "push", str(path), "--label", "prod", "-m", "first")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"pushed {name} v1 [prod]\n"
    again = cli("workflows", "push", str(path), "--json")
    answer = json.loads(again.stdout)
    assert (answer["version_number"], answer["workflow"]["name"]) == (2, name)
    ran = cli("workflows", "run", name, "--label", "prod", "--var", "who=ada")
    assert (ran.returncode, ran.stdout) == (0, "ADA\n")


def test_workflows_push_takes_a_publish_body_and_options_win(cli: Cli, tmp_path: Path) -> None:
    name = unique("body")
    path = tmp_path / "anything.json"
    path.write_text(
        json.dumps({"workflow_name": "ignored", "definition": SHOUT, "release_labels": ["a"]})
    )
    done = cli("workflows", "push", str(path), "--name", name, "--label", "b", "--json")
    assert done.returncode == 0, done.stderr
    workflow = json.loads(done.stdout)["workflow"]
    assert (workflow["name"], workflow["release_labels"]) == (name, ["a", "b"])


def test_workflows_push_reports_the_servers_reason_for_a_bad_definition(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"nodes": [{"name": "a", "type": "llm"}]}))
    done = cli("workflows", "push", str(path))
    assert done.returncode == 1
    assert "node 'a' has unknown type 'llm'" in done.stderr
    assert "promptrun workflows push: error:" in done.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{nodes")
    done = cli("workflows", "push", str(broken))
    assert (done.returncode, "broken.json" in done.stderr) == (1, True)
    assert cli("workflows", "push", str(tmp_path / "missing.json")).returncode == 2
