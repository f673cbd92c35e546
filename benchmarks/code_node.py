"""A code node's start-up cost: ``return 1`` from request to answer, in and out of the sandbox.

    python benchmarks/code_node.py [--runs 60] [--json out.json]

Each run is one whole code node as a host runs it (spawn, job in on stdin, answer out on
stdout, reap): in bubblewrap's sandbox (the default), and unsandboxed (``--unsafe-code-nodes``)
for comparison. The first run of each (which finds the libraries the sandbox needs and tries it
once) is reported apart. Wall time is what a workflow waits for; on a busy machine (the load
is printed) the 10th percentile shows the cost without the wait for a CPU. Earlier promptrun
versions without ``CodeSandbox`` (a plain child with an audit hook) are measured through their
``run_code``, so ``git stash``/another checkout gives the "before" numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

SOURCE = "return 1"


async def _measure(run: Callable[[], Awaitable[Any]], runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    await run()
    first = (time.perf_counter() - started) * 1000
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        assert await run() == 1
        walls.append((time.perf_counter() - started) * 1000)
    walls.sort()
    return {
        "first_ms": round(first, 1),
        "median_ms": round(statistics.median(walls), 1),
        "p10_ms": round(walls[len(walls) // 10], 1),
        "p90_ms": round(walls[len(walls) * 9 // 10], 1),
        "runs": runs,
    }


async def _main(runs: int) -> dict[str, Any]:
    try:
        from promptrun.workflows._code_sandbox import CodeSandbox
    except ImportError:  # before the sandbox: one way, a plain child with an audit hook
        from promptrun.workflows._code_sandbox import run_code  # type: ignore[attr-defined]

        return {
            "child with audit hook": await _measure(lambda: run_code(SOURCE, {}, timeout=10), runs)
        }
    results = {}
    for label, sandbox in (
        ("bubblewrap sandbox", CodeSandbox()),
        ("unsandboxed (--unsafe-code-nodes)", CodeSandbox(unsafe=True)),
    ):
        status = await sandbox.status()
        if label.startswith("bubblewrap") and not status.sandboxed:
            results[label] = {"unavailable": status.detail}
            continue
        results[label] = await _measure(lambda s=sandbox: s.run(SOURCE, {}, timeout=10), runs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--json", metavar="PATH", help="also write the numbers here")
    args = parser.parse_args()
    results = anyio.run(_main, args.runs)
    print(f"code node start-up ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}):")
    for label, numbers in results.items():
        shown = ", ".join(f"{k} {v}" for k, v in numbers.items())
        print(f"  {label:36} {shown}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
