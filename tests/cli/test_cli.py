"""The ``promptrun`` command against a running server: templates, run, logs, exit codes."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from promptrun.testing import RunningServer

from .conftest import Cli, ctrl_c_works, on_a_terminal

REPO = Path(__file__).parents[2]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def body(name: str, text: str = "Say hello to {name}.", **extra: Any) -> dict[str, Any]:
    return {
        "prompt_name": name,
        "prompt_template": {
            "type": "chat",
            "input_variables": ["name"],
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        },
        "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}},
        **extra,
    }


def push(cli: Cli, tmp_path: Path, *bodies: dict[str, Any]) -> list[str]:
    """Push the bodies; the lines it printed, each without its dashboard link."""
    path = tmp_path / f"{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(list(bodies)))
    done = cli("templates", "push", str(path))
    assert done.returncode == 0, done.stderr
    return said(done.stdout)


def said(stdout: str) -> list[str]:
    """Printed lines without the dashboard link that ends them."""
    return [line.split("  http")[0] for line in stdout.splitlines()]


def test_help_names_every_command(cli: Cli) -> None:
    done = cli("--help")
    assert done.returncode == 0
    for command in ("serve", "run", "templates", "logs", "workflows", "traces"):
        assert command in done.stdout
    assert cli("templates", "push", "--help").returncode == 0


@pytest.mark.parametrize(
    "args",
    [(), ("templates",), ("run",), ("logs", "--limit", "0"), ("run", "x", "--version", "two")],
)
def test_a_wrong_command_line_exits_2(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert done.stderr


def test_push_publishes_json_and_yaml_files_found_in_a_folder(cli: Cli, tmp_path: Path) -> None:
    names = [unique("json"), unique("yaml-a"), unique("yaml-b")]
    folder = tmp_path / "templates"
    (folder / "nested").mkdir(parents=True)
    (folder / "one.json").write_text(json.dumps(body(names[0], release_labels=["prod"])))
    import yaml

    (folder / "nested" / "two.yaml").write_text(
        yaml.safe_dump_all([body(names[1]), body(names[2], commit_message="from yaml")])
    )
    (folder / "notes.txt").write_text("not a template")
    done = cli("templates", "push", str(folder))
    assert done.returncode == 0, done.stderr
    assert said(done.stdout) == [  # in path order: nested/two.yaml, one.json
        f"pushed {names[1]} v1",
        f"pushed {names[2]} v1",
        f"pushed {names[0]} v1 [prod]",
    ]
    listed = json.loads(cli("templates", "list", "--json").stdout)
    by_name = {item["prompt_name"]: item for item in listed}
    assert by_name[names[0]]["release_labels"] == ["prod"]
    assert by_name[names[2]]["commit_message"] == "from yaml"


def test_a_bad_file_is_reported_the_rest_still_pushed_and_the_exit_is_1(
    cli: Cli, tmp_path: Path
) -> None:
    good = unique("good")
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text(json.dumps({"prompt_template": {}}))
    (tmp_path / "c.json").write_text(json.dumps(body(good)))
    bad_role = body(unique("bad-role"))
    bad_role["prompt_template"]["messages"][0]["role"] = "wizard"
    (tmp_path / "d.json").write_text(json.dumps(bad_role))
    done = cli("templates", "push", *(str(tmp_path / f"{n}.json") for n in "abcd"))
    assert done.returncode == 1
    assert said(done.stdout) == [f"pushed {good} v1"]
    assert "a.json: not valid JSON" in done.stderr
    assert "b.json: prompt_name is missing" in done.stderr
    assert "d.json" in done.stderr and "role" in done.stderr
    assert "3 failed" in done.stderr


def test_pushing_a_path_that_does_not_exist_exits_2(cli: Cli) -> None:
    done = cli("templates", "push", "no/such/file.json")
    assert done.returncode == 2
    assert "no such file or folder: no/such/file.json" in done.stderr


def test_yaml_without_pyyaml_says_what_to_install(cli: Cli, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "yaml"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no yaml here')\n")
    (tmp_path / "t.yaml").write_text("prompt_name: x\n")
    done = cli(
        "templates", "push", str(tmp_path / "t.yaml"),
        env={"PYTHONPATH": str(tmp_path / "shadow")},
    )  # fmt: skip
    assert done.returncode == 1
    assert "YAML needs PyYAML" in done.stderr
    assert "pip install pyyaml" in done.stderr


def test_a_pulled_version_pushes_back_as_the_same_template(cli: Cli, tmp_path: Path) -> None:
    name = unique("roundtrip")
    push(cli, tmp_path, body(name, "First {name}", commit_message="one"))
    push(cli, tmp_path, body(name, "Second {name}", commit_message="two"))
    saved = tmp_path / "pulled.yaml"
    done = cli("templates", "pull", name, "--version", "1", "-o", str(saved))
    assert done.returncode == 0, done.stderr
    assert f"wrote {name} v1" in done.stderr
    assert said(cli("templates", "push", str(saved)).stdout) == [f"pushed {name} v3"]
    third = json.loads(cli("templates", "show", name, "--json").stdout)
    first = json.loads(cli("templates", "show", name, "--version", "1", "--json").stdout)
    assert third["version"] == 3
    assert third["prompt_template"] == first["prompt_template"]
    assert third["commit_message"] == "one"
    pulled = json.loads(cli("templates", "pull", name).stdout)
    assert pulled["prompt_template"]["messages"][0]["content"][0]["text"] == "First {name}"


def test_show_prints_the_model_and_the_messages(cli: Cli, tmp_path: Path) -> None:
    name = unique("show")
    push(cli, tmp_path, body(name, "Greet {name} warmly", release_labels=["prod"]))
    done = cli("templates", "show", name, "--label", "prod")
    assert done.returncode == 0
    assert f"{name} v1  labels: prod" in done.stdout
    assert "model: openai/gpt-4o-mini" in done.stdout
    assert "[user]\nGreet {name} warmly" in done.stdout


def test_showing_an_unknown_template_exits_1_with_the_servers_reason(cli: Cli) -> None:
    done = cli("templates", "show", "does-not-exist")
    assert done.returncode == 1
    assert "not found" in done.stderr


def test_run_prints_the_answer_and_the_request_is_logged(cli: Cli, tmp_path: Path) -> None:
    name = unique("run")
    push(cli, tmp_path, body(name))
    done = cli("run", name, "--var", "name=Ada", "--tag", "cli")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Sandbox reply to: Say hello to Ada.")
    assert done.stderr.startswith("request ")
    logged = [
        json.loads(line) for line in cli("logs", "--prompt", name, "--json").stdout.splitlines()
    ]
    assert len(logged) == 1
    assert logged[0]["tags"] == ["cli"]
    assert logged[0]["input_variables"] == {"name": "Ada"}


def test_run_with_stream_prints_the_same_answer_piece_by_piece(cli: Cli, tmp_path: Path) -> None:
    name = unique("stream")
    push(cli, tmp_path, body(name))
    whole = cli("run", name, "--var", "name=Bo").stdout
    streamed = cli("run", name, "--var", "name=Bo", "--stream")
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == whole
    lines = [
        json.loads(x)
        for x in cli("run", name, "--var", "name=Bo", "--stream", "--json").stdout.splitlines()
    ]
    deltas = [line["delta"] for line in lines[:-1]]
    assert len(deltas) > 1
    assert "".join(deltas) == lines[-1]["text"] == whole.strip()
    assert lines[-1]["request_id"]


def test_run_json_gives_the_text_the_blueprint_and_the_raw_response(
    cli: Cli, tmp_path: Path
) -> None:
    name = unique("json")
    push(cli, tmp_path, body(name))
    answer = json.loads(cli("run", name, "--var", "name=Cy", "--json").stdout)
    assert answer["text"].startswith("Sandbox reply to:")
    assert answer["prompt_blueprint"]["prompt_template"]["messages"][-1]["role"] == "assistant"
    assert answer["raw_response"]["object"] == "chat.completion"


def test_running_an_unknown_template_exits_1(cli: Cli) -> None:
    done = cli("run", "no-such-template")
    assert done.returncode == 1
    assert "promptrun run: error:" in done.stderr and "not found" in done.stderr


def test_without_an_api_key_the_command_exits_2_and_says_how_to_give_one(cli: Cli) -> None:
    done = cli("logs", env={"PROMPTLAYER_API_KEY": ""})
    assert done.returncode == 2
    assert "--api-key" in done.stderr and "PROMPTLAYER_API_KEY" in done.stderr


def test_a_server_that_cannot_be_reached_exits_1(cli: Cli) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = cli("templates", "list", "--base-url", f"http://127.0.0.1:{port}")
    assert done.returncode == 1
    assert "could not reach" in done.stderr


def test_a_wrong_api_key_exits_1(cli: Cli) -> None:
    done = cli("templates", "list", "--api-key", "pl_wrong")
    assert done.returncode == 1
    assert "unknown API key" in done.stderr


def test_logs_prints_the_newest_requests_oldest_first(cli: Cli, tmp_path: Path) -> None:
    name = unique("logs")
    push(cli, tmp_path, body(name))
    for who in ("first", "second", "third"):
        assert cli("run", name, "--var", f"name={who}").returncode == 0
    header, *lines = cli("logs", "--prompt", name, "--limit", "2").stdout.splitlines()
    assert header.split() == ["ID", "TIME", "(UTC)", "PROMPT", "MODEL", "STATUS", "TOKENS",
                              "COST", "LATENCY"]  # fmt: skip
    assert len(lines) == 2
    ids = [int(line.split()[0].lstrip("#")) for line in lines]
    assert ids == sorted(ids)
    assert all(line.split()[3:7] == [name, "v1", "openai/gpt-4o-mini", "SUCCESS"] for line in lines)
    # The columns line up: the last one is right-aligned, so every line ends at one column.
    assert len({len(line) for line in [header, *lines]}) == 1


def test_logs_follow_prints_requests_as_they_arrive_until_interrupted(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = unique("follow")
    push(cli, tmp_path, body(name))
    with subprocess.Popen(
        [sys.executable, "-m", "promptrun", "logs", "--follow", "--prompt", name,
         "--interval", "0.1", "--json"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_works,
    ) as follower:  # fmt: skip
        try:
            time.sleep(1.0)  # let it print the (empty) backlog and start polling
            assert cli("run", name, "--var", "name=late").returncode == 0
            assert follower.stdout is not None
            line = follower.stdout.readline()
            assert json.loads(line)["input_variables"] == {"name": "late"}
            follower.send_signal(signal.SIGINT)
            # communicate() also drains stderr, so a chatty child cannot block on a full pipe.
            _, err = follower.communicate(timeout=30)
            assert follower.returncode == 0, err
        finally:
            follower.kill()


def test_push_shows_progress_on_a_terminal_and_nothing_in_a_pipe(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "many.json"
    path.write_text(json.dumps([body(unique("p")) for _ in range(3)]))
    piped = cli("templates", "push", str(path))
    assert piped.returncode == 0 and piped.stderr == ""
    path.write_text(json.dumps([body(unique("p")) for _ in range(3)]))
    done, shown = on_a_terminal(["templates", "push", str(path)], cli_env, "stderr")
    assert done.returncode == 0
    assert "[3/3] pushing" in shown
    assert len(done.stdout.splitlines()) == 3


def test_workflows_run_prints_the_output_nodes_value(cli: Cli, served: RunningServer) -> None:
    from tests.server.dashboard.test_workflow_pages import SHOUTER

    name = unique("shouter")
    request = urllib.request.Request(
        served.base_url + "/rest/workflows",
        data=json.dumps({"workflow_name": name, "definition": SHOUTER}).encode(),
        headers={"X-API-KEY": served.api_key, "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    done = cli("workflows", "run", name, "--var", "who=ada")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "HELLO ADA\n"
    every = json.loads(
        cli("workflows", "run", name, "--var", "who=bo", "--all-outputs", "--json").stdout
    )
    assert every["shout"]["value"] == "HELLO BO"
    assert every["broken"]["status"] == "FAILED"
    text = cli("workflows", "run", name, "--var", "who=cy", "--all-outputs").stdout
    assert "* shout: SUCCESS  HELLO CY" in text
    assert "  broken: FAILED" in text


def test_running_an_unknown_workflow_exits_1(cli: Cli) -> None:
    done = cli("workflows", "run", "no-such-workflow")
    assert done.returncode == 1
    assert "promptrun workflows run: error:" in done.stderr


def test_serve_still_serves_the_api_and_now_the_dashboard(tmp_path: Path) -> None:
    from promptrun.testing import ServerProcess

    with ServerProcess(tmp_path / "served.db") as server:
        with urllib.request.urlopen(server.base_url + "/dashboard/signin", timeout=10) as page:
            assert page.status == 200
            assert "Sign in to promptrun" in page.read().decode()
        with urllib.request.urlopen(server.base_url + "/health", timeout=10) as health:
            assert health.status == 200
