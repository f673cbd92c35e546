"""promptrun against the peer SDK and raw provider SDK calls, side by side.

``python benchmarks/run.py [--quick] [--json PATH] [--scenarios a,b] [--repeats R]``

Starts one ``promptrun serve`` (sandbox providers answering after 50 ms, PromptLayer endpoints
after 20 ms), then runs every measurement in a fresh worker process (``_worker.py``): promptrun
and raw SDK calls with this virtualenv's python, the peer SDK with its own virtualenv
(``.bench/peer-venv``, built on first use). Implementations take turns within each scenario so
drift hits them alike; the table shows the median of the repeats. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peer_venv import PEER_REQUIREMENT, ensure_peer_venv
from _report import aggregate, check_targets, render_problems, render_table
from _server import BenchServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "_worker.py"
PROVIDER_LATENCY_MS = 50.0
API_LATENCY_MS = 20.0
CHUNKS = 8
LONG_CHUNKS = 64
RUN_IMPLS = ("promptrun", "peer", "raw")
ASYNC_IMPLS = ("promptrun", "peer", "raw", "raw-aiohttp")
#: The hand-written aiohttp floor (hosted shapes; batched into promptrun serve's ingest).
RUN_FLOOR = ("floor", "floor-batched")


@dataclass(frozen=True)
class Plan:
    """One scenario: who runs it, how many operations (quick, full), at what concurrency."""

    scenario: str
    impls: tuple[str, ...]
    n: tuple[int, int]
    concurrency: int = 1
    peer_n: tuple[int, int] | None = None  # the peer's bound where it would crawl
    cap: tuple[float, float] = (60.0, 180.0)  # seconds before no new operation starts
    peer_cap: tuple[float, float] | None = None
    grace: tuple[float, float] = (30.0, 30.0)  # after the cap, before calls in flight are cancelled
    mem_n: tuple[int, int] = (0, 0)  # log_request: calls queued for the memory figure
    repeats: int | None = None  # fixed number of repeats (else --repeats)

    def size(self, impl: str, quick: bool) -> tuple[int, float, float]:
        """(operations, time cap, grace) for this implementation."""
        i = 0 if quick else 1
        n, cap = self.n[i], self.cap[i]
        if impl == "peer" and self.peer_n is not None:
            n = min(n, self.peer_n[i])
        if impl == "peer" and self.peer_cap is not None:
            cap = self.peer_cap[i]
        return n, cap, self.grace[i]


PLANS = [
    Plan("import", RUN_IMPLS, (1, 1), repeats=5),
    Plan("first_run", (*RUN_IMPLS, "promptrun-sdk"), (1, 1), repeats=5),
    Plan("sync_run_cold", RUN_IMPLS, (15, 50)),
    Plan("sync_run_warm", RUN_IMPLS, (20, 100)),
    Plan("async_run_c1", ASYNC_IMPLS + RUN_FLOOR, (20, 80)),
    Plan("async_run_c50", ASYNC_IMPLS + RUN_FLOOR, (500, 2000), 50, peer_n=(100, 500)),
    Plan("async_run_c200", ASYNC_IMPLS + RUN_FLOOR, (800, 4000), 200, peer_n=(150, 600),
         peer_cap=(20, 30)),
    Plan("async_run_c500", ASYNC_IMPLS + RUN_FLOOR, (1000, 4000), 500, peer_n=(500, 1000),
         peer_cap=(5, 20), grace=(15, 15)),
    Plan("async_run_c2000", ASYNC_IMPLS + RUN_FLOOR, (2000, 6000), 2000, peer_n=(1000, 2000),
         peer_cap=(3, 20), grace=(7, 20)),
    Plan("stream_async", ASYNC_IMPLS, (12, 40)),
    Plan("stream_sync", RUN_IMPLS, (12, 40)),
    Plan("log_request_async", ("promptrun", "peer"), (5000, 20000), peer_n=(30, 100),
         mem_n=(20_000, 100_000)),
    Plan("log_request_sync", ("promptrun", "peer"), (5000, 20000), peer_n=(30, 100),
         mem_n=(20_000, 100_000)),
]  # fmt: skip
SCENARIOS = [p.scenario for p in PLANS] + ["ingest"]


def machine() -> dict[str, Any]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("openai", "anthropic", "google-genai", "httpx", "aiohttp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "peer": PEER_REQUIREMENT,
        "sdks": versions,
    }


def raise_fd_limit() -> None:
    """Thousands of concurrent connections need thousands of descriptors (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time all processes on this machine have used since boot (idle and iowait left out)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    """Runs the workers against one server and collects their results."""

    def __init__(self, server: BenchServer, workdir: Path, peer_python: Path | None, quick: bool):
        self.server = server
        self.workdir = workdir
        self.peer_python = peer_python
        self.quick = quick
        self.config = workdir / "worker.json"
        self.config.write_text(
            json.dumps(
                server.worker_config()
                | {
                    "control_url": server.base_url + "/sandbox/_control",
                    "chunks": CHUNKS,
                    "long_chunks": LONG_CHUNKS,
                }
            )
        )
        self.runs: list[dict[str, Any]] = []

    def python_for(self, impl: str) -> str:
        if impl == "peer":
            assert self.peer_python is not None
            return str(self.peer_python)
        return sys.executable

    def run_one(self, plan: Plan, impl: str, repeat: int) -> dict[str, Any]:
        n, cap, grace = plan.size(impl, self.quick)
        mem_n = plan.mem_n[0 if self.quick else 1] if impl == "promptrun" and repeat == 0 else 0
        command = [
            self.python_for(impl), str(WORKER),
            "--impl", impl, "--scenario", plan.scenario, "--n", str(n),
            "--concurrency", str(plan.concurrency), "--time-cap", str(cap),
            "--grace", str(grace), "--mem-n", str(mem_n), "--config", str(self.config),
        ]  # fmt: skip
        spool = Path(tempfile.mkdtemp(prefix="spool-", dir=self.workdir))
        counted = plan.scenario != "import"
        stored0 = self.server.stored() if counted else 0
        cpu0, busy0, kids0 = self.server.cpu_seconds(), busy_seconds(), children_cpu()
        began = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                env=self.server.worker_env(spool),
                capture_output=True,
                text=True,
                timeout=cap + grace + 180,
                check=False,
            )
            result = _last_json(done.stdout)
            if result is None:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                result = {"failed": f"exit {done.returncode}: {' | '.join(tail)}"}
        except subprocess.TimeoutExpired:
            result = {"failed": f"worker still running after {cap + grace + 180:.0f} s"}
        result |= {"impl": impl, "scenario": plan.scenario, "repeat": repeat}
        wall = result["worker_s"] = time.perf_counter() - began
        server_cpu = self.server.cpu_seconds() - cpu0
        ours = server_cpu + children_cpu() - kids0
        # CPU that neither the worker nor the server used: other work on this machine.
        others = max(0.0, busy_seconds() - busy0 - ours)
        result["others_cpu_share"] = others / (wall * (os.cpu_count() or 1))
        if counted:
            result["stored"] = self.server.stored() - stored0
            ops = max(int(result.get("n") or 0), 1)
            result["server_cpu_us_per_op"] = server_cpu / ops * 1e6
        self.runs.append(result)
        return result

    def run_plan(self, plan: Plan, repeats: int) -> None:
        for repeat in range(plan.repeats or repeats):
            for impl in plan.impls:
                if impl == "peer" and self.peer_python is None:
                    continue
                result = self.run_one(plan, impl, repeat)
                state = result.get("failed") or (
                    f"{result.get('ok', 0)}/{result.get('n', 0)} ok, {result.get('errors', 0)} errors"
                )
                print(
                    f"bench: {plan.scenario:<18} {impl:<12} #{repeat + 1}  "
                    f"{result['worker_s']:6.1f} s  {state}",
                    file=sys.stderr,
                    flush=True,
                )


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def run_ingest(workdir: Path) -> dict[str, Any]:
    """``benchmarks/ingest.py --quick`` (server ingestion rates), its JSON when it offers one."""
    script = HERE / "ingest.py"
    if not script.exists():
        return {"skipped": "benchmarks/ingest.py is not there"}
    out = workdir / "ingest.json"
    attempts = [["--quick", "--json", str(out)], ["--quick", "--json"], ["--quick"]]
    for args in attempts:
        out.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode == 2 and "unrecognized arguments" in done.stderr:
            continue  # an older ingest.py: try the next way of asking
        if done.returncode != 0:
            return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
        if out.exists():
            return {"args": args, "results": json.loads(out.read_text())}
        parsed = _last_json(done.stdout)
        if parsed is not None:
            return {"args": args, "results": parsed}
        return {"args": args, "text": done.stdout.strip(), "results": _parse_table(done.stdout)}
    return {"failed": "ingest.py accepted none of the ways to run it"}


def _parse_table(text: str) -> list[dict[str, str]]:
    """Rows of a plain text table (header, a line of dashes, rows; cells 2+ spaces apart)."""
    lines = [line for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines[1:], start=1):
        if set(line.replace(" ", "")) == {"-"}:
            header = re.split(r"\s{2,}", lines[i - 1].strip())
            rows = [re.split(r"\s{2,}", row.strip()) for row in lines[i + 1 :]]
            return [dict(zip(header, row, strict=False)) for row in rows if len(row) == len(header)]
    return []


def _ingest_text(ingest: dict[str, Any]) -> str:
    if "text" in ingest:
        return str(ingest["text"])
    if "results" in ingest:
        return json.dumps(ingest["results"], indent=1)[:3000]
    return str(ingest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, one repeat (~3 min)")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {','.join(SCENARIOS)}")
    parser.add_argument(
        "--repeats", type=int, help="repeats per scenario (default 1 quick, 3 full)"
    )
    args = parser.parse_args()
    chosen = SCENARIOS if not args.scenarios else [s.strip() for s in args.scenarios.split(",")]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    repeats = args.repeats or (1 if args.quick else 3)
    plans = [p for p in PLANS if p.scenario in chosen]
    raise_fd_limit()
    started = time.perf_counter()
    peer_python = None
    if any("peer" in p.impls for p in plans):
        peer_python = ensure_peer_venv(ROOT / ".bench" / "peer-venv")
    box = machine()
    settings = {
        "provider_latency_ms": PROVIDER_LATENCY_MS,
        "api_latency_ms": API_LATENCY_MS,
        "chunks": CHUNKS,
        "long_chunks": LONG_CHUNKS,
        "quick": args.quick,
        "repeats": repeats,
        "n": {p.scenario: p.size("promptrun", args.quick)[0] for p in plans},
        "peer_n": {p.scenario: p.size("peer", args.quick)[0] for p in plans if "peer" in p.impls},
    }
    with tempfile.TemporaryDirectory(prefix="promptrun-bench-") as tmp:
        workdir = Path(tmp)
        server = BenchServer(
            workdir,
            provider_latency_ms=PROVIDER_LATENCY_MS,
            api_latency_ms=API_LATENCY_MS,
            chunks=CHUNKS,
        )
        server.start()
        try:
            bench = Bench(server, workdir, peer_python, args.quick)
            for plan in plans:
                bench.run_plan(plan, repeats)
        finally:
            server.stop()
        ingest = run_ingest(workdir) if "ingest" in chosen else None
    medians = aggregate(bench.runs)
    targets = check_targets(medians)
    header = (
        f"machine: {box['cores']} cores, {box['cpu']}, python {box['python']}; "
        f"settings: provider latency {PROVIDER_LATENCY_MS:g} ms, PromptLayer API latency "
        f"{API_LATENCY_MS:g} ms, {CHUNKS} chunks/stream ({LONG_CHUNKS} for the slope), "
        f"{'quick' if args.quick else 'full'} run, median of {repeats} repeat(s); "
        f"N per scenario: {', '.join(f'{k}={v:,}' for k, v in settings['n'].items())}"
    )
    shares = [r["others_cpu_share"] for r in bench.runs if "others_cpu_share" in r]
    if shares:
        mean, worst = sum(shares) / len(shares), max(shares)
        header += (
            f"\nother processes used {mean:.0%} of the cores on average during the workers "
            f"(worst {worst:.0%})"
        )
        if mean > 0.05:
            header += ": the machine was not quiet, numbers are noisier than usual"
    print(header)
    order = [p.scenario for p in plans]
    print(render_table(medians, order))
    problems = render_problems(medians, order)
    if problems:
        print("errors and failures:")
        print(problems)
        print()
    if ingest is not None:
        print("ingest (benchmarks/ingest.py --quick):")
        print(_ingest_text(ingest))
        print()
    print("targets:")
    for target in targets:
        print("  " + target.line())
    elapsed = time.perf_counter() - started
    print(f"\n(took {elapsed:.0f} s)")
    if args.json:
        report = {
            "machine": box,
            "settings": settings,
            "header": header,
            "medians": medians,
            "targets": [t.__dict__ for t in targets],
            "ingest": ingest,
            "runs": bench.runs,
            "elapsed_s": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
