"""``promptrun serve --db postgresql://...`` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from promptrun.testing import ServerProcess


def test_an_unreachable_database_stops_serve_with_a_clear_message_and_no_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://promptrun:s3cret@/nowhere?host={tmp_path / 'no-socket-here'}"
    done = subprocess.run(
        [sys.executable, "-m", "promptrun", "serve", "--port", "0", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL at postgresql://promptrun:***@/nowhere" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout


def test_serve_on_postgres_says_which_database_without_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:pw123@")
    proc = ServerProcess(tmp_path / "unused.db", args=["--db", url, "--no-sandbox"])
    with proc:
        printed = proc.output()
    assert "(db postgresql://postgres:***@/" in printed
    assert "pw123" not in printed
