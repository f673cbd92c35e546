"""promptrun serve scaled out: ingestion with 1, 2 and 4 processes on PostgreSQL (and
SQLite), and the dashboard's pages at a million logged requests and more.

``python benchmarks/scaleout.py [--quick] [--json PATH] [--skip-ingest] [--skip-dashboard]
[--rows N] [--stores postgres,sqlite] [--repeats N] [--pg-url URL] [--sqlite-path PATH]``

Ingestion: N ``promptrun serve --db postgresql://...`` processes on one database, and a load
generator (this process) sending pre-encoded batches of 100 records (about 1.3 KB each) to
all of them round-robin from 32 concurrent senders; records/s over the run and the p50/p99
latency of a batch. SQLite (one process, its only mode) for comparison, and how long after
the burst it had caught up (SQLite fills its rollups and search index after ingestion; see
docs/store.md). The PostgreSQL cluster is this benchmark's own (initdb in a temporary
directory), durable: fsync and synchronous commit on, as a real deployment would run.

Dashboard: ``--rows`` requests (1,000,000 by default) bulk-loaded (``_bulkload.py``: COPY for
PostgreSQL, indexes built after the load; the rollups and the search index filled as the
store does for a database logged before them), then the dashboard's pages fetched through
HTTP, signed in: no filter, the twentieth page, each filter alone, combined filters, the
metadata filter, text search for common to absent words and a client id, each sort, one
request, the overview, metrics by prompt and version; median and p95 of repeated fetches,
and how many requests each list page says match (each also adds up totals and latency
percentiles and reads the filter menus). ``--pg-url`` and ``--sqlite-path`` time databases
of your own, loaded only if they hold fewer than ``--rows`` requests: how the ten-million
row PostgreSQL table in the README was made.

Everything runs on this machine (2 cores): the server processes, PostgreSQL and the load
generator share them, which caps what more processes can add.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import json
import re
import secrets
import sqlite3
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


def _caught_up(path: Path, timeout: float = 300.0) -> float:
    """Seconds until the server's SQLite file has derived everything it stored."""
    began = time.perf_counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        while time.perf_counter() - began < timeout:
            (behind,) = conn.execute(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM requests) - upto FROM caught_up"
            ).fetchone()
            if behind <= 0:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    return time.perf_counter() - began


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


def bench_ingest(
    cluster: PostgresCluster, workdir: Path, quick: bool, count: int | None = None
) -> list[dict[str, Any]]:
    count = count or (60 if quick else 400)
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
            if store == "sqlite":
                measured["caught_up_s"] = _caught_up(Path(db))
        finally:
            stop_servers(procs)
        results.append({"store": store, "processes": processes, **measured})
        print(
            f"  {store:8} x{processes}: {measured['records_per_s']:8.0f} records/s  "
            f"p50 {measured['p50_ms']:6.1f} ms  p99 {measured['p99_ms']:6.1f} ms",
            flush=True,
        )
    return results


# -- the dashboard at millions of rows --------------------------------------------------------

_SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')
_COUNT = re.compile(r'id="count">([\d,+]+) request')
_OLDER = re.compile(r'<a id="next" href="([^"]+)">')
PAGES = 20  # "page 20": the twentieth page, reached by following "Older" links


def dashboard_queries() -> list[tuple[str, str]]:
    """(name, path) of every page timed; the names of the pages the previous store served
    are kept, so runs before and after compare row by row."""
    day_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 86400))
    return [
        ("newest 50, no filter", "/dashboard/requests"),
        ("page 20, no filter", "(found by following Older links)"),
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
        ("metadata user=u7", "/dashboard/requests?meta_key=user&meta_value=u7"),
        ("search: common word", "/dashboard/requests?q=" + SEARCH_WORDS["common"]),
        ("search: uncommon word", "/dashboard/requests?q=" + SEARCH_WORDS["uncommon"]),
        ("search: rare word", "/dashboard/requests?q=" + SEARCH_WORDS["rare"]),
        ("search: no match", "/dashboard/requests?q=" + SEARCH_WORDS["absent"]),
        ("search: a client id", "/dashboard/requests?q=bulk-12345"),
        ("sorted by latency", "/dashboard/requests?sort=latency"),
        ("sorted by tokens", "/dashboard/requests?sort=tokens&order=asc"),
        ("sorted by cost (prompt + version)",
         f"/dashboard/requests?prompt={PROMPTS[3]}&version=2&sort=cost"),
        ("one request", "/dashboard/requests/bulk-12345"),
        ("overview, 24 h", "/dashboard/?range=24h"),
        ("overview, 30 days", "/dashboard/?range=30d"),
        ("by prompt and version, 7 days", "/dashboard/requests/prompts?range=7d"),
        ("API list, newest 50", "/promptrun/v1/requests?limit=50"),
    ]  # fmt: skip


async def time_pages(base: str, repeats: int) -> dict[str, dict[str, Any]]:
    """Median and p95 of ``repeats`` fetches of each page (after one that warms caches), and
    how many requests the page says match."""
    jar = aiohttp.CookieJar(unsafe=True)
    timings: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
        async with http.get("/dashboard/signin") as r:
            token = _SIGNIN.search(await r.text())
        assert token is not None
        form = {"signin_token": token.group(1), "api_key": KEY, "next": "/dashboard/"}
        async with http.post("/dashboard/signin", data=form) as r:
            assert r.status == 200, await r.text()

        async def fetch(path: str) -> str:
            async with http.get(path, headers={"X-API-KEY": KEY}) as r:
                text = await r.text()
                if r.status != 200:
                    raise RuntimeError(f"{path} answered {r.status}: {text[:300]}")
                return text

        for name, path in dashboard_queries():
            if path.startswith("("):
                path = "/dashboard/requests"
                for _ in range(PAGES - 1):
                    older = _OLDER.search(await fetch(path))
                    assert older is not None, "fewer pages than the benchmark walks"
                    path = html.unescape(older.group(1))
            seconds = []
            page = ""
            for _ in range(repeats + 1):  # the first fetch warms caches and is not counted
                began = time.perf_counter()
                page = await fetch(path)
                seconds.append(time.perf_counter() - began)
            seconds = seconds[1:]
            count = _COUNT.search(page)
            timings[name] = {
                "median_ms": statistics.median(seconds) * 1000,
                "p95_ms": pct(seconds, 0.95) * 1000,
                "matches": count.group(1) if count else "",
            }
            print(f"    {name:36} {timings[name]['median_ms']:8.1f} ms", flush=True)
    return timings


async def _prepare(store_name: str, db: str) -> tuple[int, int]:
    """Migrate (and, for a database built before, fill the rollups), register the key; the
    workspace and how many requests it already has."""
    from promptrun.server.auth import hash_key
    from promptrun.server.store import postgres_store, sqlite_store
    from promptrun.server.store.base import RequestQuery

    store = postgres_store(db) if store_name == "postgres" else sqlite_store(Path(db))
    await store.start()
    try:
        await store.add_keys([("default", hash_key(KEY))])
        workspace = await store.workspace_for_key(hash_key(KEY))
        assert workspace is not None
        have = (await store.request_stats(workspace, RequestQuery())).requests
    finally:
        await store.close()
    return workspace, have


def bench_dashboard(targets: list[tuple[str, str]], rows: int, repeats: int) -> dict[str, Any]:
    """Load ``rows`` requests into each (store, database) that does not have them yet, then
    time the dashboard's pages over HTTP."""
    found: dict[str, Any] = {"rows": rows, "stores": {}}
    for store_name, db in targets:
        workspace, have = asyncio.run(_prepare(store_name, db))
        load: dict[str, float] = {}
        if have < rows:
            print(f"  loading {rows:,} rows into {store_name}...", flush=True)
            if store_name == "postgres":
                load = asyncio.run(load_postgres(db, rows, workspace))
            else:
                load = load_sqlite(Path(db), rows, workspace)
            print("  loaded: " + ", ".join(f"{k} {v:.0f} s" for k, v in load.items()), flush=True)
        else:
            print(f"  {store_name} already holds {have:,} requests", flush=True)
        print(f"  {store_name} pages:", flush=True)
        procs = start_servers(db, 1, 10)
        try:
            timings = asyncio.run(time_pages(procs[0].base_url, repeats))
        finally:
            stop_servers(procs)
        found["stores"][store_name] = {"load_seconds": load, "pages": timings}
    return found


def report(ingest: list[dict[str, Any]], dashboard: dict[str, Any] | None) -> None:
    if ingest:
        print("\nIngestion (batches of 100 records, 32 concurrent senders, round-robin)")
        print(f"{'store':10} {'processes':>9} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
              f" {'caught up after':>16}")  # fmt: skip
        for r in ingest:
            caught = r.get("caught_up_s")
            print(
                f"{r['store']:10} {r['processes']:>9} {r['records_per_s']:>10.0f} "
                f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                + (f"{caught:>14.1f} s" if caught is not None else f"{'(in the write)':>16}")
            )
    if dashboard:
        stores = list(dashboard["stores"])
        print(f"\nDashboard at {dashboard['rows']:,} requests (HTTP, signed in; ms median / p95)")
        print(f"{'page':36}" + "".join(f"{s:>32}" for s in stores))
        names = list(dashboard["stores"][stores[0]]["pages"])
        for name in names:
            cells = []
            for s in stores:
                t = dashboard["stores"][s]["pages"][name]
                cells.append(f"{t['median_ms']:7.1f} /{t['p95_ms']:7.1f} {t['matches']:>14}")
            print(f"{name:36}" + "".join(f"{c:>32}" for c in cells))
        for s in stores:
            load = dashboard["stores"][s]["load_seconds"]
            if load:
                print(f"{s} bulk load: " + ", ".join(f"{k} {v:.0f} s" for k, v in load.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs (a minute or so)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-dashboard", action="store_true")
    parser.add_argument(
        "--ingest-batches", type=int, help="batches of 100 per ingestion run (default 400)"
    )
    parser.add_argument("--rows", type=int, help="rows for the dashboard (default 1,000,000)")
    parser.add_argument("--stores", default="postgres,sqlite", help="dashboard stores to time")
    parser.add_argument("--repeats", type=int, help="fetches of each page (default 15; 5 quick)")
    parser.add_argument(
        "--pg-url", help="time the dashboard on this PostgreSQL database (loaded if short of rows)"
    )
    parser.add_argument(
        "--sqlite-path", type=Path, help="time the dashboard on this SQLite file (likewise)"
    )
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    repeats = args.repeats or (5 if args.quick else 15)
    settings = {"shared_buffers": "'512MB'", "max_wal_size": "'4GB'", "work_mem": "'16MB'"}
    ingest: list[dict[str, Any]] = []
    dashboard: dict[str, Any] | None = None
    with (
        tempfile.TemporaryDirectory(prefix="promptrun-scaleout-") as workdir,
        PostgresCluster(durable=True, settings=settings) as cluster,
    ):
        if not args.skip_ingest:
            print("ingestion:", flush=True)
            ingest = bench_ingest(cluster, Path(workdir), args.quick, args.ingest_batches)
        if not args.skip_dashboard:
            print("dashboard:", flush=True)
            targets: list[tuple[str, str]] = []
            for store_name in args.stores.split(","):
                if store_name == "postgres":
                    if args.pg_url is None:
                        run_sql(cluster.dsn(), "CREATE DATABASE dashboard")
                    targets.append(("postgres", args.pg_url or cluster.dsn("dashboard")))
                elif store_name == "sqlite":
                    targets.append(("sqlite", str(args.sqlite_path or Path(workdir) / "d.db")))
            dashboard = bench_dashboard(targets, rows, repeats)
    report(ingest, dashboard)
    if args.json:
        args.json.write_text(json.dumps({"ingest": ingest, "dashboard": dashboard}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
