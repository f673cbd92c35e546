"""Wall time, CPU and memory of a measured phase (stdlib only; used by the workers)."""

from __future__ import annotations

import gc
import os
import resource
import time
from typing import Any

__all__ = ["Meter", "ms", "pct", "peak_rss_mb", "rss_mb"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size now (not the peak), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Meter:
    """Wall time, CPU of the whole process (every thread) and RSS over a measured phase."""

    def __init__(self) -> None:
        self.errors = 0
        self.samples: list[str] = []
        self.latencies: list[float] = []
        self.flushed = True

    def start(self) -> None:
        gc.collect()
        self.rss0 = rss_mb()
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self.rss1 = rss_mb()

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.samples) < 3:
            self.samples.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    def result(self, ops: int) -> dict[str, Any]:
        ok = len(self.latencies)
        per = max(ops, 1)
        return {
            "n": ops,
            "ok": ok,
            "errors": self.errors,
            "error_samples": self.samples,
            "wall_s": self.wall,
            "ops_per_s": ok / self.wall if self.wall else None,
            "p50_ms": ms(pct(self.latencies, 0.50)),
            "p99_ms": ms(pct(self.latencies, 0.99)),
            "cpu_us_per_op": self.cpu / per * 1e6,
            "rss_start_mb": self.rss0,
            "rss_end_mb": self.rss1,
            "rss_growth_mb": self.rss1 - self.rss0,
            "peak_rss_mb": peak_rss_mb(),
        }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
