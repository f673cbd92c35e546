"""Where a client's CPU goes in ``run()``: cProfile of the bench's scenarios, one process.

Starts the bench server (sandbox provider after 50 ms, PromptLayer API after 20 ms), then
profiles N runs in this process (warm template cache) and prints the top functions by
cumulative and by own time. ``--impl`` picks promptrun (async or sync) or the floor.

    .venv/bin/python benchmarks/profile_run.py --mode async --concurrency 1 --n 200
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _adapters import make_async, make_sync
from _server import BenchServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="promptrun")
    parser.add_argument("--mode", choices=["async", "sync"], default="async")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = BenchServer(Path(tmp), provider_latency_ms=50, api_latency_ms=20, chunks=8).start()
        try:
            os.environ.update(server.worker_env(Path(tmp) / "spool"))
            cfg = server.worker_config()
            profile = cProfile.Profile()
            if args.mode == "sync":
                pl = make_sync(args.impl, cfg, 300)
                pl.call()
                cpu = time.process_time()
                profile.enable()
                for _ in range(args.n):
                    pl.call()
                pl.finish()
                profile.disable()
                cpu = time.process_time() - cpu
                pl.close()
            else:
                cpu = asyncio.run(_async(args, cfg, profile))
        finally:
            server.stop()
    print(f"{args.impl} {args.mode} c={args.concurrency}: {cpu / args.n * 1e6:,.0f} µs CPU/run")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())


async def _async(args: argparse.Namespace, cfg: dict, profile: cProfile.Profile) -> float:
    pl = make_async(args.impl, cfg, 300)
    await pl.call()
    sem = asyncio.Semaphore(args.concurrency)

    async def one() -> None:
        async with sem:
            await pl.call()

    cpu = time.process_time()
    profile.enable()
    await asyncio.gather(*(one() for _ in range(args.n)))
    await pl.finish()
    profile.disable()
    cpu = time.process_time() - cpu
    await pl.close()
    return cpu


if __name__ == "__main__":
    main()
