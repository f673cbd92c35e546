"""The client's CPU per run() with tracing off and on.

``python benchmarks/tracing_cpu.py [--runs 400] [--concurrency 8] [--repeats 3]``

Starts one ``promptrun serve`` in its own process (sandbox providers answering at once, no
added latency), then measures in fresh worker processes, taking turns: ``off`` (a plain
``AsyncPromptLayer``), ``on`` (``enable_tracing=True``: each run makes its run, template-fetch
and provider-call spans, exported to the server's ``/v1/traces``) and ``on+traceable`` (each
run inside a ``@pl.traceable`` function too). A worker warms up, then runs ``--runs`` runs at
``--concurrency`` and flushes (logs and spans): its CPU (user + system, every thread: the
exporter's included) divided by the runs is the figure. The median of the repeats is shown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import INPUT_VARIABLES, BenchServer

MODES = ("off", "on", "on+traceable")

WORKER = r"""
import asyncio, json, resource, sys
from promptrun import AsyncPromptLayer

mode, runs, concurrency, variables = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

async def main():
    async with AsyncPromptLayer(enable_tracing=mode != "off", cache_ttl_seconds=300) as pl:
        async def one():
            return await pl.run("greet", input_variables=variables)

        if mode == "on+traceable":
            one = pl.traceable(name="handle")(one)
        sem = asyncio.Semaphore(concurrency)

        async def limited():
            async with sem:
                await one()

        await asyncio.gather(*(limited() for _ in range(50)))  # warm up
        assert await pl.flush(60)
        start = cpu()
        await asyncio.gather(*(limited() for _ in range(runs)))
        assert await pl.flush(60)
        used = cpu() - start
        print(json.dumps({"cpu_us_per_run": used / runs * 1e6, "stats": pl.stats()}))

asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--base-src",
        type=Path,
        help="another checkout's runtime/ folder: adds 'base-off', tracing off on that code",
    )
    args = parser.parse_args()
    modes = (("base-off",) if args.base_src else ()) + MODES
    with tempfile.TemporaryDirectory() as tmp:
        server = BenchServer(Path(tmp), provider_latency_ms=0, api_latency_ms=0, chunks=4)
        server.start()
        try:
            results: dict[str, list[float]] = {mode: [] for mode in modes}
            for repeat in range(args.repeats):
                for mode in modes:
                    env = server.worker_env(Path(tmp) / f"spool-{mode}-{repeat}")
                    if mode == "base-off":
                        env["PYTHONPATH"] = str(args.base_src.resolve())
                    out = subprocess.run(
                        [sys.executable, "-c", WORKER, mode.removeprefix("base-"), str(args.runs),
                         str(args.concurrency), json.dumps(INPUT_VARIABLES)],
                        env=env, capture_output=True, text=True, check=True, timeout=600,
                    )  # fmt: skip
                    answer = json.loads(out.stdout.strip().splitlines()[-1])
                    stats = answer["stats"]
                    assert stats.get("spans_dropped", 0) == 0, stats
                    assert stats.get("spans_failed", 0) == 0, stats
                    results[mode].append(answer["cpu_us_per_run"])
        finally:
            server.stop()
    off = statistics.median(results["off"])  # the reference, this checkout with tracing off
    print(f"client CPU per run(), {args.runs} runs at concurrency {args.concurrency}, "
          f"median of {args.repeats}:")  # fmt: skip
    for mode in modes:
        median = statistics.median(results[mode])
        extra = "" if mode == "off" else f"  (+{median - off:.0f} us, {median / off - 1:+.0%})"
        runs = ", ".join(f"{x:.0f}" for x in results[mode])
        print(f"  {mode:14} {median:7.0f} us{extra}   [{runs}]")


if __name__ == "__main__":
    main()
