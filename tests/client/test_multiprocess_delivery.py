"""Several client processes sharing the default spool folder, through server crashes and
their own, store every record exactly once (the soak harness, benchmarks/soak.py, at
100,000+ records)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_processes_sharing_a_spool_through_server_and_client_kills_store_every_record_once(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "report.json"
    # 4 processes (2 sync, 2 async) x 25,000 log_request at 2,000/s each, plus the records of
    # the two killed ones; the server is stopped with SIGTERM, SIGKILL, SIGTERM meanwhile.
    command = [
        sys.executable, str(SOAK), "--processes", "4", "--records", "25000", "--rate", "2000",
        "--restarts", "3", "--client-kills", "2", "--layout", "shared", "--json", str(report_path),
    ]  # fmt: skip
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert report_path.exists(), proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    print(proc.stdout)  # the counts, for the record (pytest -s)
    assert report["records_stored"] >= 100_000
    assert report["missing"] == []
    assert report["stored_twice_by_tag"] == []
    assert report["stored_twice_by_client_request_id"] == []
    assert report["stored_but_never_sent"] == []
    sent = report["records_sent"] + report["records_in_flight_at_a_kill"]
    assert report["records_stored"] == sent
    assert sum("killed -9" in e for e in report["events"]) == 2
    assert sum("SIGKILL" in e for e in report["events"]) == 1
    assert report["client_stats"]["dropped"] == 0
    assert report["ok"], proc.stdout
    assert proc.returncode == 0
