"""``GET /health`` latency while the server is under attack by one keyed or unkeyed client.

Five phases against one ``promptrun serve`` process started with ``ulimit -n 1024``:

- ``idle``: nothing else is happening;
- ``hostile render``: client threads keep both render threads busy with a template that loops
  until its time budget (1 s) stops it, plus one that tries to build a billion characters;
- ``flood, held``: 1,100 connections that each send half a request and stall (the server sheds
  the longest-waiting one for each new connection past its cap, and times the rest out);
- ``flood, reopened``: the same, but every connection the server closes is opened again at once,
  as fast as the attacker can: a connection flood, where a probe's SYN can find the kernel's
  accept queue full and wait for the client's one-second retry;
- ``gzip bomb``: unauthenticated clients send, one after the other, a 2.9 MB gzip body of 3 GB of
  zeros to ``POST /rest/prompt-templates`` and to ``POST /v1/traces`` (each a 413), with a
  request pipelined behind the body that must never be answered.

Each probe opens a new connection (as a load balancer's health check does) and times the whole
request. Run: ``python benchmarks/hostile.py [--seconds 10] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptrun.testing import ServerProcess

LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
WIDE = "{{ x|center(999999999) }}"
PARTIAL = b"GET /health HTTP/1.1\r\nHost: x\r\n"
FLOOD = 1_100
MIB = 1 << 20


def _gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip stream of ``inflated_mib`` MiB of zeros, about 1,000 times smaller."""
    import zlib

    first = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = first.compress(b"\0" * MIB) + first.flush(zlib.Z_FULL_FLUSH)
    again = first.compress(b"\0" * MIB) + first.flush(zlib.Z_FULL_FLUSH)  # the same every MiB
    return head + again * (inflated_mib - 1)


def _connection(base_url: str) -> http.client.HTTPConnection:
    host, port = base_url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def _call(base_url: str, method: str, path: str, key: str | None, body: Any = None) -> int:
    conn = _connection(base_url)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["X-API-KEY"] = key
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _probe(base_url: str, seconds: float) -> dict[str, float]:
    """/health once every 20 ms for ``seconds``: latency percentiles in milliseconds."""
    latencies: list[float] = []
    failures = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            ok = _call(base_url, "GET", "/health", None) == 200
        except OSError:
            ok = False
        elapsed = time.perf_counter() - started
        if ok:
            latencies.append(elapsed * 1000)
        else:
            failures += 1
        time.sleep(max(0.0, 0.02 - elapsed))
    latencies.sort()
    return {
        "probes": len(latencies) + failures,
        "failed": failures,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(latencies[-1], 2),
        "over_100ms": sum(1 for ms in latencies if ms > 100),
    }


def _template(name: str, text: str) -> dict[str, Any]:
    chat = {
        "role": "user",
        "template_format": "jinja2",
        "content": [{"type": "text", "text": text}],
    }
    return {
        "prompt_template": {"prompt_name": name},
        "prompt_version": {
            "prompt_template": {"type": "chat", "messages": [chat]},
            "metadata": {"model": {"provider": "openai", "name": "gpt-4o-mini"}},
        },
    }


def _while(attack: Callable[[threading.Event], None], workers: int) -> Callable[[], None]:
    stop = threading.Event()
    threads = [threading.Thread(target=attack, args=(stop,), daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()

    def finish() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    return finish


def _render_attack(
    proc: ServerProcess, counts: dict[str, int]
) -> Callable[[threading.Event], None]:
    def attack(stop: threading.Event) -> None:
        while not stop.is_set():
            for name, variables in (("loops", {}), ("wide", {"x": "a"})):
                status = _call(
                    proc.base_url, "POST", f"/prompt-templates/{name}", proc.api_key,
                    {"input_variables": variables},
                )  # fmt: skip
                counts[str(status)] = counts.get(str(status), 0) + 1

    return attack


def _flood_attack(
    proc: ServerProcess, counts: dict[str, int], *, reopen: bool
) -> Callable[[threading.Event], None]:
    host, port = proc.base_url.removeprefix("http://").split(":")

    def attack(stop: threading.Event) -> None:
        held: list[socket.socket] = []
        opened = 0
        try:
            while not stop.is_set():
                # Keep FLOOD stalled connections: drop those the server closed, open new ones.
                alive = []
                for sock in held:
                    try:
                        # b"": closed (shed for a newer connection); data: a 408 (timed out).
                        seen = sock.recv(1, socket.MSG_PEEK)
                        outcome = "shed by the server" if seen == b"" else "timed out (408)"
                    except BlockingIOError:
                        outcome = ""
                    except OSError:
                        outcome = "shed by the server"
                    if outcome:
                        sock.close()
                        counts[outcome] = counts.get(outcome, 0) + 1
                    else:
                        alive.append(sock)
                held = alive
                while len(held) < FLOOD and (reopen or opened < FLOOD) and not stop.is_set():
                    try:
                        sock = socket.create_connection((host, int(port)), timeout=5)
                        sock.sendall(PARTIAL)
                        sock.setblocking(False)  # so that peeking at it never waits
                    except OSError:
                        counts["connect failed"] = counts.get("connect failed", 0) + 1
                        break
                    held.append(sock)
                    opened += 1
                    counts["opened"] = opened
                stop.wait(0.05)
        finally:
            for sock in held:
                sock.close()

    return attack


def _bomb_attack(proc: ServerProcess, counts: dict[str, int]) -> Callable[[threading.Event], None]:
    host, port = proc.base_url.removeprefix("http://").split(":")
    bomb = _gzip_bomb(3000)

    def attack(stop: threading.Event) -> None:
        while not stop.is_set():
            for path in ("/rest/prompt-templates", "/v1/traces"):
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
                ).encode()
                got = b""
                with socket.create_connection((host, int(port)), timeout=60) as sock:
                    # OSError: closed by the server before it took the whole body
                    with contextlib.suppress(OSError):
                        sock.sendall(head + bomb + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    try:
                        while chunk := sock.recv(65536):
                            got += chunk
                    except OSError:
                        pass
                status = got[9:12].decode() or "no answer"
                counts[status] = counts.get(status, 0) + 1
                if got.count(b"HTTP/1.1 ") > 1:
                    counts["pipelined request answered"] = (
                        counts.get("pipelined request answered", 0) + 1
                    )

    return attack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="probing time per phase")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc = ServerProcess(Path(tmp) / "hostile.db", args=["--no-sandbox"], max_open_files=1024)
        with proc:
            for name, text in (("loops", LOOPS), ("wide", WIDE)):
                _call(proc.base_url, "POST", "/rest/prompt-templates", proc.api_key,
                      _template(name, text))  # fmt: skip
            results["idle"] = _probe(proc.base_url, args.seconds)
            counts: dict[str, int] = {}
            finish = _while(_render_attack(proc, counts), workers=4)
            time.sleep(0.5)
            results["hostile render"] = {**_probe(proc.base_url, args.seconds), "attack": counts}
            finish()
            for phase, reopen in (("flood, held", False), ("flood, reopened", True)):
                counts = {}
                finish = _while(_flood_attack(proc, counts, reopen=reopen), workers=1)
                deadline = time.monotonic() + 60
                while counts.get("opened", 0) < FLOOD and time.monotonic() < deadline:
                    time.sleep(0.05)  # probe the flood once it is up, not while it builds
                time.sleep(0.5)
                results[phase] = {**_probe(proc.base_url, args.seconds), "attack": counts}
                finish()
                time.sleep(1.0)
            counts = {}
            finish = _while(_bomb_attack(proc, counts), workers=1)
            time.sleep(0.5)
            results["gzip bomb"] = {**_probe(proc.base_url, args.seconds), "attack": counts}
            finish()
            output = proc.output()
    results["server said"] = [
        line for line in output.splitlines() if "WARNING" in line or "note" in line
    ]
    print(
        f"{'phase':<18} {'probes':>7} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'>100 ms':>8}"
    )
    for phase in ("idle", "hostile render", "flood, held", "flood, reopened", "gzip bomb"):
        r = results[phase]
        print(
            f"{phase:<18} {r['probes']:>7} {r['failed']:>7} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['max_ms']:>8} {r['over_100ms']:>8}  {r.get('attack', '')}"
        )
    for line in results["server said"]:
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
