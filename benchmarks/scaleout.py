"""promptrun serve scaled out on PostgreSQL: ingestion with 1, 2 and 4 processes, and the
dashboard's list-and-filter latency at a million logged requests.

``python benchmarks/scaleout.py [--quick] [--json PATH] [--skip-ingest] [--skip-dashboard]``

Ingestion: N ``promptrun serve --db postgresql://...`` processes on one database, and a load
generator (this process) sending pre-encoded batches of 100 records (about 1.3 KB each) to
all of them round-robin from 32 concurrent senders; records/s over the run and the p50/p99
latency of a batch. SQLite (one process, its only mode) for comparison. The PostgreSQL
cluster is this benchmark's own (initdb in a temporary directory), durable: fsync and
synchronous commit on, as a real deployment would run.

Dashboard: 1,000,000 requests bulk-loaded (COPY for PostgreSQL, indexes built after the
load; one big transaction for SQLite), then the dashboard's request pages fetched through
HTTP, signed in: no filter, each filter alone, combined filters, text search for common and
rare words, the overview charts; median and p95 of repeated fetches (each page also shows the
total matching and the filter menus, so it costs a count and the facets as well).

Everything runs on this machine (2 cores): the server processes, PostgreSQL and the load
generator share them, which caps what more processes can add.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _bulkload import PROMPTS, SEARCH_WORDS, load_postgres, load_sqlite  # noqa: E402
from tests.pg._cluster import PostgresCluster, run_sql  # noqa: E402

from promptrun.testing import ServerProcess  # noqa: E402

KEY = "pl_bench_" + secrets.token_hex(12)
BATCH = 100
SENDERS = 32
_ids = itertools.count()


def record() -> dict[str, Any]:
    """A /track-request body like the peer SDK's after an OpenAI chat call."""
    now = time.time()
    return {
        "function_name": "openai.chat.completions.create",
        "provider_type": "openai",
        "args": [],
        "kwargs": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant. " * 4},
                {"role": "user", "content": "Tell me about the analytical engine, briefly."},
            ],
            "temperature": 0.7,
        },
        "tags": ["bench"],
        "request_start_time": now - 0.5,
        "request_end_time": now,
        "metadata": {"user": "bench"},
        "prompt_input_variables": {"topic": "engines"},
        "request_response": {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "A mechanical computer. " * 6},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 42, "completion_tokens": 36, "total_tokens": 78},
        },
    }


def batches(count: int) -> list[bytes]:
    """``count`` encoded ingest bodies, each with fresh client ids."""
    body = record()
    return [
        msgspec.json.encode(
            {
                "records": [
                    {"type": "track", "client_request_id": f"r{next(_ids)}", "body": body}
                    for _ in range(BATCH)
                ]
            }
        )
        for _ in range(count)
    ]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(urls: list[str], payloads: list[bytes], warmup: list[bytes]) -> dict[str, float]:
    """Send every payload (round-robin over ``urls``); records/s and batch latencies."""
    headers = {"X-API-KEY": KEY, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=SENDERS * 2)
    latencies: list[float] = []
    stored = 0
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def send(url: str, payload: bytes, timed: bool) -> None:
            nonlocal stored
            began = time.perf_counter()
            async with http.post(url + "/promptrun/v1/ingest", data=payload) as response:
                answer = await response.read()
            if response.status != 200:
                raise RuntimeError(f"ingest answered {response.status}: {answer[:300]!r}")
            if timed:
                latencies.append(time.perf_counter() - began)
                stored += answer.count(b'"stored"')

        await asyncio.gather(*(send(urls[i % len(urls)], p, False) for i, p in enumerate(warmup)))
        queue = iter(enumerate(payloads))

        async def sender() -> None:
            for i, payload in queue:
                await send(urls[i % len(urls)], payload, True)

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        elapsed = time.perf_counter() - began
    if stored != len(payloads) * BATCH:
        raise RuntimeError(f"stored {stored} of {len(payloads) * BATCH} records")
    return {
        "records_per_s": stored / elapsed,
        "p50_ms": pct(latencies, 0.50) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "seconds": elapsed,
    }


def start_servers(db: str, count: int, connections: int) -> list[ServerProcess]:
    procs = []
    for _ in range(count):
        proc = ServerProcess(
            Path(tempfile.gettempdir()) / "unused.db",
            api_key=KEY,
            args=["--db", db, "--no-sandbox", "--db-connections", str(connections)],
        )
        procs.append(proc.start())
    return procs


def stop_servers(procs: list[ServerProcess]) -> None:
    for proc in procs:
        proc.stop()
        proc.close()


def bench_ingest(cluster: PostgresCluster, workdir: Path, quick: bool) -> list[dict[str, Any]]:
    count = 60 if quick else 400
    results = []
    setups: list[tuple[str, int]] = [
        ("sqlite", 1),
        ("postgres", 1),
        ("postgres", 2),
        ("postgres", 4),
    ]
    for store, processes in setups:
        if store == "postgres":
            name = f"ingest_{processes}"
            run_sql(cluster.dsn(), f"CREATE DATABASE {name}")
            db = cluster.dsn(name)
        else:
            db = str(workdir / f"ingest_{processes}.db")
        procs = start_servers(db, processes, max(4, 16 // processes))
        try:
            measured = asyncio.run(
                drive([p.base_url for p in procs], batches(count), batches(processes * 4))
            )
        finally:
            stop_servers(procs)
        results.append({"store": store, "processes": processes, **measured})
        print(
            f"  {store:8} x{processes}: {measured['records_per_s']:8.0f} records/s  "
            f"p50 {measured['p50_ms']:6.1f} ms  p99 {measured['p99_ms']:6.1f} ms",
            flush=True,
        )
    return results


# -- the dashboard at a million rows ---------------------------------------------------------

_SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')


def dashboard_queries() -> list[tuple[str, str]]:
    day_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 86400))
    return [
        ("newest 50, no filter", "/dashboard/requests"),
        ("page 20, no filter", "/dashboard/requests?page=20"),
        ("prompt", f"/dashboard/requests?prompt={PROMPTS[3]}"),
        ("prompt + version", f"/dashboard/requests?prompt={PROMPTS[3]}&version=2"),
        ("tag", "/dashboard/requests?tag=vip"),
        ("provider", "/dashboard/requests?provider=google"),
        ("model", "/dashboard/requests?model=claude-sonnet-4"),
        ("status ERROR (2%)", "/dashboard/requests?status=ERROR"),
        ("last 24 hours", "/dashboard/requests?" + urlencode({"since": day_ago})),
        ("model + status", "/dashboard/requests?model=gpt-4o&status=ERROR"),
        ("prompt + tag + 24h", "/dashboard/requests?"
         + urlencode({"prompt": PROMPTS[5], "tag": "beta", "since": day_ago})),
        ("search: common word", "/dashboard/requests?q=" + SEARCH_WORDS["common"]),
        ("search: uncommon word", "/dashboard/requests?q=" + SEARCH_WORDS["uncommon"]),
        ("search: rare word", "/dashboard/requests?q=" + SEARCH_WORDS["rare"]),
        ("search: no match", "/dashboard/requests?q=" + SEARCH_WORDS["absent"]),
        ("one request", "/dashboard/requests/bulk-12345"),
        ("overview, 24 h", "/dashboard/?range=24h"),
        ("overview, 30 days", "/dashboard/?range=30d"),
        ("API list, newest 50", "/promptrun/v1/requests?limit=50"),
    ]  # fmt: skip


async def time_pages(base: str, repeats: int) -> dict[str, dict[str, float]]:
    jar = aiohttp.CookieJar(unsafe=True)
    timings: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
        async with http.get("/dashboard/signin") as r:
            token = _SIGNIN.search(await r.text())
        assert token is not None
        form = {"signin_token": token.group(1), "api_key": KEY, "next": "/dashboard/"}
        async with http.post("/dashboard/signin", data=form) as r:
            assert r.status == 200, await r.text()
        for name, path in dashboard_queries():
            seconds = []
            for _ in range(repeats + 1):  # the first fetch warms caches and is not counted
                began = time.perf_counter()
                async with http.get(path, headers={"X-API-KEY": KEY}) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{path} answered {r.status}")
                seconds.append(time.perf_counter() - began)
            seconds = seconds[1:]
            timings[name] = {
                "median_ms": statistics.median(seconds) * 1000,
                "p95_ms": pct(seconds, 0.95) * 1000,
            }
    return timings


def bench_dashboard(
    cluster: PostgresCluster, workdir: Path, rows: int, repeats: int, with_sqlite: bool
) -> dict[str, Any]:
    """Load ``rows`` requests into each store, then time the dashboard's pages over HTTP.

    SQLite's pages take seconds each at a million rows, so it gets fewer repeats.
    """
    from promptrun.server.auth import hash_key
    from promptrun.server.store import postgres_store, sqlite_store

    found: dict[str, Any] = {"rows": rows, "stores": {}}
    targets: list[tuple[str, str]] = [("postgres", cluster.dsn("dashboard"))]
    run_sql(cluster.dsn(), "CREATE DATABASE dashboard")
    if with_sqlite:
        targets.append(("sqlite", str(workdir / "dashboard.db")))
    for store_name, db in targets:

        async def prepare(db: str = db, store_name: str = store_name) -> int:
            store = postgres_store(db) if store_name == "postgres" else sqlite_store(Path(db))
            await store.start()
            await store.add_keys([("default", hash_key(KEY))])
            workspace = await store.workspace_for_key(hash_key(KEY))
            await store.close()
            assert workspace is not None
            return workspace

        workspace = asyncio.run(prepare())
        print(f"  loading {rows:,} rows into {store_name}...", flush=True)
        if store_name == "postgres":
            seconds = asyncio.run(load_postgres(db, rows, workspace))
        else:
            seconds = load_sqlite(Path(db), rows, workspace)
        print(f"  loaded in {seconds:.0f} s", flush=True)
        procs = start_servers(db, 1, 10)
        try:
            times = repeats if store_name == "postgres" else max(2, repeats // 5)
            timings = asyncio.run(time_pages(procs[0].base_url, times))
        finally:
            stop_servers(procs)
        found["stores"][store_name] = {"load_seconds": seconds, "pages": timings}
    return found


def report(ingest: list[dict[str, Any]], dashboard: dict[str, Any] | None) -> None:
    if ingest:
        print("\nIngestion (batches of 100 records, 32 concurrent senders, round-robin)")
        print(f"{'store':10} {'processes':>9} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for r in ingest:
            print(
                f"{r['store']:10} {r['processes']:>9} {r['records_per_s']:>10.0f} "
                f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
            )
    if dashboard:
        stores = list(dashboard["stores"])
        print(f"\nDashboard at {dashboard['rows']:,} requests (HTTP, signed in; ms median/p95)")
        print(f"{'page':28}" + "".join(f"{s:>20}" for s in stores))
        names = list(dashboard["stores"][stores[0]]["pages"])
        for name in names:
            cells = []
            for s in stores:
                t = dashboard["stores"][s]["pages"][name]
                cells.append(f"{t['median_ms']:9.1f} /{t['p95_ms']:8.1f}")
            print(f"{name:28}" + "".join(f"{c:>20}" for c in cells))
        for s in stores:
            print(f"{s} bulk load: {dashboard['stores'][s]['load_seconds']:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs (a minute or so)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-dashboard", action="store_true")
    parser.add_argument("--rows", type=int, help="rows for the dashboard (default 1,000,000)")
    parser.add_argument("--no-sqlite-dashboard", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    settings = {"shared_buffers": "'512MB'", "max_wal_size": "'4GB'", "work_mem": "'16MB'"}
    ingest: list[dict[str, Any]] = []
    dashboard: dict[str, Any] | None = None
    with (
        tempfile.TemporaryDirectory(prefix="promptrun-scaleout-") as workdir,
        PostgresCluster(durable=True, settings=settings) as cluster,
    ):
        if not args.skip_ingest:
            print("ingestion:", flush=True)
            ingest = bench_ingest(cluster, Path(workdir), args.quick)
        if not args.skip_dashboard:
            print("dashboard:", flush=True)
            dashboard = bench_dashboard(
                cluster, Path(workdir), rows, 5 if args.quick else 15, not args.no_sqlite_dashboard
            )
    report(ingest, dashboard)
    if args.json:
        args.json.write_text(json.dumps({"ingest": ingest, "dashboard": dashboard}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
