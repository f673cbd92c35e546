"""What ``promptrun serve`` says at every start: its data folder, the dashboard, which key to
use, and the export lines for the PromptLayer side and the sandbox providers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from promptrun.pipeline.providers import SANDBOX_KEY, TABLE
from promptrun.server._banner import SANDBOXED, Banner, client_url, sandbox_env
from promptrun.server._datadir import data_dir


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"HOME": "/home/ada"}, "linux", "/home/ada/.local/share/promptrun"),
        ({"HOME": "/home/ada", "XDG_DATA_HOME": "/data"}, "linux", "/data/promptrun"),
        (
            {"HOME": "/home/ada", "XDG_DATA_HOME": "rel"},
            "linux",
            "/home/ada/.local/share/promptrun",
        ),
        ({"HOME": "/Users/ada"}, "darwin", "/Users/ada/Library/Application Support/promptrun"),
        ({"HOME": "/h", "LOCALAPPDATA": "/w/Local"}, "win32", "/w/Local/promptrun"),
    ],
)
def test_the_data_folder_follows_each_platforms_convention(
    environ: dict[str, str], platform: str, expected: str
) -> None:
    assert data_dir(environ, platform) == Path(expected)


def test_a_server_bound_to_every_address_is_reached_on_loopback() -> None:
    assert client_url("0.0.0.0", 8765) == "http://127.0.0.1:8765"
    assert client_url("::", 1) == "http://[::1]:1"
    assert client_url("10.0.0.2", 80) == "http://10.0.0.2:80"


def test_the_export_lines_cover_the_promptlayer_side_and_every_key_based_sandbox() -> None:
    lines = Banner("http://127.0.0.1:9", "pl_new", configured_keys=False, sandbox=True).exports()
    assert "export PROMPTLAYER_BASE_URL=http://127.0.0.1:9 PROMPTLAYER_API_KEY=pl_new" in lines
    for name in ("openai", "anthropic", "google", "mistral", "openrouter"):
        info = TABLE[name]
        url = "http://127.0.0.1:9" + info.sandbox_path
        assert f"export {info.base_var}={url} {info.key_var}={SANDBOX_KEY}" in lines
    assert set(sandbox_env("http://h")) == {
        var for name in SANDBOXED for var in (TABLE[name].base_var, TABLE[name].key_var)
    }


def test_without_a_new_key_the_banner_says_where_the_key_comes_from() -> None:
    later = Banner("http://h", None, configured_keys=False, sandbox=False)
    assert "first served" in later.notes()[1] and "--api-key" in later.notes()[1]
    assert "export PROMPTLAYER_BASE_URL=http://h" in later.exports()
    assert not any("OPENAI" in line for line in later.exports())
    given = Banner("http://h", None, configured_keys=True, sandbox=True)
    assert "given with --api-key" in given.notes()[1]


def _start(tmp_path: Path, *args: str) -> list[str]:
    """Run ``promptrun serve`` in ``tmp_path`` with a fresh HOME until it has said everything
    it says at start; then stop it with Ctrl-C."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLAYER_", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        [sys.executable, "-m", "promptrun", "serve", "--port", "0", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if not line.strip() and any(x.startswith("export ") for x in lines):
                    break  # the blank line that ends the export block
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
            assert proc.returncode == 0, lines
        finally:
            proc.kill()
    return lines


def test_serve_keeps_its_database_in_the_users_data_folder_and_says_so_at_every_start(
    tmp_path: Path,
) -> None:
    db = tmp_path / "home" / ".local" / "share" / "promptrun" / "promptrun.db"
    first = _start(tmp_path)
    assert db.is_file()
    assert not (tmp_path / "promptrun.db").exists()
    listening = next(line for line in first if "listening on" in line)
    assert listening.endswith(f"(db {db})")
    base = listening.split("listening on ")[1].split()[0]
    assert f"promptrun serve: dashboard: {base}/dashboard (sign in with an API key)" in first
    key = next(line for line in first if "generated API key" in line).split("key ")[1].split()[0]
    assert f"export PROMPTLAYER_BASE_URL={base} PROMPTLAYER_API_KEY={key}" in first

    second = _start(tmp_path)
    text = "\n".join(second)
    assert key not in text and "generated API key" not in text
    assert f"(db {db})" in text
    assert "use the key printed when this database was first served" in text
    assert "--api-key KEY" in text
    assert any(line.startswith("export OPENAI_BASE_URL=") for line in second)


def test_a_promptrun_db_left_in_the_folder_is_pointed_out_and_left_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "promptrun.db").write_bytes(b"")
    lines = _start(tmp_path, "--no-sandbox")
    assert "pass --db promptrun.db to serve this one" in "\n".join(lines)
    assert (tmp_path / "promptrun.db").read_bytes() == b""
    assert not any(line.startswith("export OPENAI") for line in lines)


def test_a_body_budget_smaller_than_the_largest_record_is_pointed_out_at_start(
    tmp_path: Path,
) -> None:
    lines = _start(tmp_path, "--no-sandbox", "--max-inflight-body-bytes", "8388608")
    note = next(line for line in lines if "--max-inflight-body-bytes" in line)
    assert "(8388608) is less than --max-record-bytes (33554432)" in note
    assert "refused (413)" in note
    quiet = _start(tmp_path, "--no-sandbox", "--max-inflight-body-bytes", "33554432")
    assert not any("--max-inflight-body-bytes" in line for line in quiet)


def test_a_busy_port_stops_the_start_before_a_database_or_a_key_is_made(tmp_path: Path) -> None:
    # A newcomer whose port is taken must not be left with a database whose generated key
    # was never shown.
    db = tmp_path / "home" / ".local" / "share" / "promptrun" / "promptrun.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLAYER_", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "promptrun", "serve", "--port", str(port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert proc.returncode == 1
    assert f"port {port}" in proc.stderr and "--port" in proc.stderr, proc.stderr
    assert not db.exists()
    assert "generated API key" not in proc.stdout + proc.stderr
    # On a free port, the first start makes the database and shows its key.
    first = _start(tmp_path)
    assert any("generated API key" in line for line in first)
