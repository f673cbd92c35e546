"""One measurement in a fresh process: ``_worker.py --impl I --scenario S --n N ...``.

Prints one JSON line of results. Standalone: the standard library plus the implementation
being measured (see ``_adapters.py``), so the peer's virtualenv can run it and a raw or peer
measurement never imports promptrun. Only ``sys`` and ``time`` are imported before the
``import`` scenario has timed its import, so that number is a fresh interpreter's.
"""

from __future__ import annotations

import sys
import time

_IMPORTS = {"promptrun": "promptrun", "peer": "promptlayer", "raw": "openai"}


def _flag(name: str) -> str | None:
    argv = sys.argv
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _measure_import(impl: str) -> None:
    module = _IMPORTS[impl]
    wall, cpu = time.perf_counter(), time.process_time()
    __import__(module)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    import json

    result = {"impl": impl, "scenario": "import", "module": module, "n": 1, "ok": 1, "errors": 0}
    result |= {"import_ms": wall * 1000, "cpu_ms": cpu * 1000}
    print(json.dumps(result), flush=True)


def _measure_first_run(impl: str, config: str) -> None:
    """A fresh interpreter's first run(): imports, client, template fetch, provider call."""
    import json

    with open(config) as f:
        cfg = json.load(f)
    name, variables = cfg["prompt_name"], cfg["input_variables"]
    wall, cpu = time.perf_counter(), time.process_time()
    client = None
    if impl in ("promptrun", "promptrun-sdk"):
        import promptrun

        client = promptrun.PromptLayer(native_transport=impl == "promptrun")
        ok = client.run(name, input_variables=variables) is not None
    elif impl == "peer":
        import promptlayer

        client = promptlayer.PromptLayer()
        ok = client.run(name, input_variables=variables) is not None
    else:
        import openai

        ok = bool(openai.OpenAI().chat.completions.create(**cfg["llm_kwargs"]).choices)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if client is not None and hasattr(client, "close"):
        client.close()
    result = {"impl": impl, "scenario": "first_run", "n": 1, "ok": int(ok), "errors": int(not ok)}
    result |= {"first_run_ms": wall * 1000, "cpu_ms": cpu * 1000}
    print(json.dumps(result), flush=True)


if __name__ == "__main__" and _flag("--scenario") == "import":
    _measure_import(_flag("--impl") or "promptrun")
    sys.exit(0)
if __name__ == "__main__" and _flag("--scenario") == "first_run":
    _measure_first_run(_flag("--impl") or "promptrun", _flag("--config") or "")
    sys.exit(0)

# ruff: noqa: E402 -- everything below may load only after the import scenario had its turn
import argparse
import asyncio
import gc
import itertools
import json
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from _adapters import log_request_kwargs, make_async, make_sync
from _meter import Meter, pct, rss_mb
from _streams import async_streams, sync_streams


# -- run(): sequential sync, concurrent async -------------------------------------------------
def sync_runs(impl: str, cfg: dict[str, Any], n: int, ttl: float, cap: float) -> dict[str, Any]:
    pl = make_sync(impl, cfg, ttl)
    pl.call()  # warm-up: imports, connections, the template cache
    m = Meter()
    m.start()
    deadline, done = m.t0 + cap, 0
    while done < n and time.perf_counter() < deadline:
        began = time.perf_counter()
        done += 1
        try:
            pl.call()
        except Exception as exc:
            m.error(exc)
            continue
        m.latencies.append(time.perf_counter() - began)
    flushed = pl.finish()
    m.stop()
    out = m.result(done) | {"flushed": flushed, "capped": done < n, "stats": pl.stats()}
    pl.close()
    return out


async def _load(
    m: Meter, call: Callable[[], Awaitable[None]], n: int, c: int, cap: float, grace: float
) -> tuple[int, bool]:
    """``n`` calls, ``c`` at once; none start after ``cap`` s; stragglers get ``grace`` s more."""
    issued = itertools.count()
    deadline = m.t0 + cap
    started = 0

    async def lane() -> None:
        nonlocal started
        while next(issued) < n and time.perf_counter() < deadline:
            started += 1
            began = time.perf_counter()
            try:
                await call()
            except Exception as exc:
                m.error(exc)
                continue
            m.latencies.append(time.perf_counter() - began)

    lanes = [asyncio.ensure_future(lane()) for _ in range(c)]
    _, pending = await asyncio.wait(lanes, timeout=cap + grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        unfinished = started - len(m.latencies) - m.errors
        m.errors += unfinished
        m.samples.append(f"{unfinished} calls still running {cap + grace:.0f} s in: cancelled")
    return started, started < n


async def async_runs(
    impl: str, cfg: dict[str, Any], n: int, c: int, ttl: float, cap: float, grace: float
) -> dict[str, Any]:
    pl = make_async(impl, cfg, ttl)
    await pl.call()
    m = Meter()
    m.start()
    started, capped = await _load(m, pl.call, n, c, cap, grace)
    flushed = await pl.finish()
    m.stop()
    out = m.result(started) | {"flushed": flushed, "capped": capped, "stats": pl.stats()}
    await pl.close()
    return out


# -- log_request ------------------------------------------------------------------------------
def _log_result(
    m: Meter, n: int, enqueue_s: float, flush_s: float, flushed: bool
) -> dict[str, Any]:
    out = m.result(n)
    out |= {
        "p50_us": (pct(m.latencies, 0.5) or 0) * 1e6,
        "p99_us": (pct(m.latencies, 0.99) or 0) * 1e6,
        "calls_per_s": len(m.latencies) / enqueue_s if enqueue_s else None,
        "enqueue_s": enqueue_s,
        "flush_s": flush_s,
        "shipped_per_s": len(m.latencies) / (enqueue_s + flush_s),
        "flushed": flushed,
    }
    return out


def sync_logs(impl: str, cfg: dict[str, Any], n: int, mem_n: int) -> dict[str, Any]:
    pl = make_sync(impl, cfg, 0)
    kwargs = log_request_kwargs()
    pl.log(kwargs)
    pl.finish()
    m = Meter()
    m.start()
    for _ in range(n):
        began = time.perf_counter()
        try:
            pl.log(kwargs)
        except Exception as exc:
            m.error(exc)
            continue
        m.latencies.append(time.perf_counter() - began)
    enqueue_s = time.perf_counter() - m.t0
    flushed = pl.finish()
    flush_s = time.perf_counter() - m.t0 - enqueue_s
    m.stop()
    out = _log_result(m, n, enqueue_s, flush_s, flushed)
    if mem_n:
        gc.collect()
        rss0, began = rss_mb(), time.perf_counter()
        for _ in range(mem_n):
            pl.log(kwargs)
        enqueued = time.perf_counter()
        out["mem_growth_mb"] = rss_mb() - rss0
        out["mem_stats"] = pl.stats()
        out["mem_flushed"] = pl.finish()
        done = time.perf_counter()
        out |= {"mem_n": mem_n, "mem_calls_per_s": mem_n / (enqueued - began)}
        out |= {"mem_flush_s": done - enqueued, "mem_shipped_per_s": mem_n / (done - began)}
    out["stats"] = pl.stats()
    pl.close()
    return out


async def async_logs(impl: str, cfg: dict[str, Any], n: int, mem_n: int) -> dict[str, Any]:
    pl = make_async(impl, cfg, 0)
    kwargs = log_request_kwargs()
    await pl.log(kwargs)
    await pl.finish()
    m = Meter()
    m.start()
    for _ in range(n):
        began = time.perf_counter()
        try:
            await pl.log(kwargs)
        except Exception as exc:
            m.error(exc)
            continue
        m.latencies.append(time.perf_counter() - began)
    enqueue_s = time.perf_counter() - m.t0
    flushed = await pl.finish()
    flush_s = time.perf_counter() - m.t0 - enqueue_s
    m.stop()
    out = _log_result(m, n, enqueue_s, flush_s, flushed)
    if mem_n:
        gc.collect()
        rss0, began = rss_mb(), time.perf_counter()
        for _ in range(mem_n):
            await pl.log(kwargs)
        enqueued = time.perf_counter()
        out["mem_growth_mb"] = rss_mb() - rss0
        out["mem_stats"] = pl.stats()
        out["mem_flushed"] = await pl.finish()
        done = time.perf_counter()
        out |= {"mem_n": mem_n, "mem_calls_per_s": mem_n / (enqueued - began)}
        out |= {"mem_flush_s": done - enqueued, "mem_shipped_per_s": mem_n / (done - began)}
    out["stats"] = pl.stats()
    await pl.close()
    return out


# -- entry ------------------------------------------------------------------------------------
def measure(args: argparse.Namespace, cfg: dict[str, Any]) -> dict[str, Any]:
    s, impl, n, cap = args.scenario, args.impl, args.n, args.time_cap
    if s in ("sync_run_cold", "sync_run_warm"):
        return sync_runs(impl, cfg, n, 0 if s.endswith("cold") else 300, cap)
    if s.startswith("async_run_c"):
        return asyncio.run(async_runs(impl, cfg, n, args.concurrency, 300, cap, args.grace))
    if s == "stream_sync":
        return sync_streams(impl, cfg, n, cap)
    if s == "stream_async":
        return asyncio.run(async_streams(impl, cfg, n, cap))
    if s == "log_request_sync":
        return sync_logs(impl, cfg, n, args.mem_n)
    if s == "log_request_async":
        return asyncio.run(async_logs(impl, cfg, n, args.mem_n))
    raise SystemExit(f"unknown scenario {s!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--time-cap", type=float, default=120.0, help="seconds")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds after the cap")
    parser.add_argument("--mem-n", type=int, default=0, help="log_request: calls to queue")
    parser.add_argument("--config", required=True, help="JSON: prompt, variables, llm_kwargs")
    args = parser.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    head = {"impl": args.impl, "scenario": args.scenario, "concurrency": args.concurrency}
    try:
        result = head | measure(args, cfg)
    except Exception as exc:
        result = head | {"failed": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
