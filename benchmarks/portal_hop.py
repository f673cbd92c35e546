"""What one hop from a caller's thread into the portal's event loop costs.

The sync client runs every call in one event loop on its portal thread. This measures a no-op
coroutine called through ``BlockingPortal.call`` (what the sync client used before) and
through ``promptrun._portal.call`` (one ``call_soon_threadsafe`` and a
``concurrent.futures.Future``), from 1 caller thread and from 8 at once: CPU per call (the
whole process's, both threads included) and wall time per call.

    .venv/bin/python benchmarks/portal_hop.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from promptrun import _portal


async def noop() -> None:
    return None


def measure(hop: Callable[[], Any], calls: int, threads: int) -> tuple[float, float]:
    """(CPU µs per call, wall µs per call) for ``calls`` hops spread over ``threads``."""
    each = calls // threads

    def work() -> None:
        for _ in range(each):
            hop()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    n = each * threads
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    portal = _portal.get_portal()
    hops: dict[str, Callable[[], Any]] = {
        "BlockingPortal.call": lambda: portal.call(noop),
        "promptrun._portal.call": lambda: _portal.call(noop),
    }
    for hop in hops.values():  # warm up
        measure(hop, 1000, 1)
    print(f"{'hop':<24} {'threads':>7} {'CPU us/call':>12} {'wall us/call':>13}")
    for threads in (1, 8):
        for name, hop in hops.items():
            runs = [measure(hop, args.calls, threads) for _ in range(args.repeats)]
            cpu = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            print(f"{name:<24} {threads:>7} {cpu:>12.1f} {wall:>13.1f}")


if __name__ == "__main__":
    main()
