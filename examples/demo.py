"""`make demo`: the whole system on this machine, no account and no internet.

Starts `promptrun serve` on SQLite with the sandbox providers (or reuses the one a previous
demo left running), publishes the example templates, runs every example against it, and says
what happened and where the server is. `make stop` (this script with --stop) stops the server.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PROVIDER_ENV = ("OPENAI_", "AZURE_OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")
STATE = ROOT / ".demo"
EXAMPLES = [
    ["publish_templates.py"],
    ["workflow_run.py"],
    ["sync_quickstart.py"],
    ["async_streaming.py"],
    ["async_web_service.py", "--selftest", "50"],
    ["log_request_openai.py"],
    ["log_request_anthropic.py"],
    ["sync_thread_pool.py"],
]


def _get(url: str, key: str | None = None) -> dict:
    req = urllib.request.Request(url, headers={"X-API-KEY": key} if key else {})
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.loads(r.read())


def _healthy(base: str) -> bool:
    try:
        return _get(base + "/health").get("status") == "ok"
    except OSError:
        return False


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def start_server() -> tuple[str, str]:
    STATE.mkdir(exist_ok=True)
    key_file, url_file, pid_file = STATE / "api_key", STATE / "url", STATE / "server.pid"
    if not key_file.exists():
        key_file.write_text("pl_demo_" + secrets.token_hex(16))
    key = key_file.read_text().strip()
    if url_file.exists() and _healthy(url_file.read_text().strip()):
        return url_file.read_text().strip(), key
    port = int(os.environ.get("PROMPTRUN_DEMO_PORT", "8765"))
    if not _free(port):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    log = open(STATE / "server.log", "ab")  # noqa: SIM115 - handed to the server process
    # The server runs workflow prompt nodes itself: without provider keys in its environment
    # it sends them to its own sandbox, so the demo never reaches a real provider.
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(_PROVIDER_ENV)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "promptrun",
            "serve",
            "--port",
            str(port),
            "--db",
            str(STATE / "promptrun.db"),
            "--api-key",
            key,
            # the example workflow's tool (examples/workflow_run.py serves it there)
            "--tool-url",
            "http://127.0.0.1:8766",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=server_env,
    )
    pid_file.write_text(str(proc.pid))
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if _healthy(base):
            url_file.write_text(base)
            return base, key
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit(f"promptrun serve did not start; see {STATE / 'server.log'}")


def stop_server() -> None:
    pid_file = STATE / "server.pid"
    if not pid_file.exists():
        print("no demo server is running")
        return
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        print("stopped the demo server")
    except ProcessLookupError:
        print("the demo server had already stopped")
    pid_file.unlink()
    (STATE / "url").unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stop", action="store_true", help="stop the demo server")
    if parser.parse_args().stop:
        stop_server()
        return 0
    base, key = start_server()
    env = {
        **os.environ,
        "PROMPTLAYER_BASE_URL": base,
        "PROMPTLAYER_API_KEY": key,
        "PROMPTRUN_SPOOL_DIR": str(STATE / "spool"),
        "OPENAI_API_KEY": "sk-sandbox",
        "OPENAI_BASE_URL": f"{base}/sandbox/openai/v1",
        "ANTHROPIC_API_KEY": "sk-ant-sandbox",
        "ANTHROPIC_BASE_URL": f"{base}/sandbox/anthropic",
        "GEMINI_API_KEY": "gemini-sandbox",
        "GOOGLE_GEMINI_BASE_URL": f"{base}/sandbox/google",
    }
    env.pop("GOOGLE_API_KEY", None)
    before = _get(base + "/promptrun/v1/requests?limit=1", key)["total"]
    failed = []
    for argv in EXAMPLES:
        print(f"\n=== examples/{' '.join(argv)}")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "examples" / argv[0]), *argv[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        print(proc.stdout.rstrip())
        if proc.returncode != 0:
            print(proc.stderr.rstrip())
            failed.append(argv[0])
        print(
            f"--- {'ok' if proc.returncode == 0 else 'FAILED'} in {time.perf_counter() - t0:.2f} s"
        )
    after = _get(base + "/promptrun/v1/requests?limit=1", key)["total"]
    print(
        f"\n{len(EXAMPLES) - len(failed)}/{len(EXAMPLES)} examples ran; {after - before} requests "
        f"logged this time ({after} in all).\n"
        f"The server is still running at {base} (sandbox providers at {base}/sandbox/...).\n"
        f"API key: {key} (also in .demo/api_key). Data: .demo/promptrun.db. Stop it: make stop"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
