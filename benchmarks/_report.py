"""Turn worker results into medians, a table with ratios, and the issue's targets met or missed."""

from __future__ import annotations

import functools
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Target", "aggregate", "check_targets", "render_problems", "render_table"]

IMPL_COLUMNS = (
    "promptrun",
    "peer",
    "raw",
    "raw-aiohttp",
    "floor",
    "floor-batched",
    "promptrun-sdk",
)
#: promptrun divided by each other column. ``promptrun-sdk``: promptrun with
#: ``native_transport=False`` (the provider SDK's transport, as before the native path).
RATIO_COLUMNS = ("pr/peer", "pr/raw", "pr/raw-aio", "pr/floor", "pr/floor-b", "pr/sdk")
# Summed over repeats; everything else numeric is the median of the repeats.
_SUMMED = frozenset({"n", "ok", "errors", "stored", "repeats"})

# (label, field, format, ratio?) per kind of scenario
Row = tuple[str, str, str, bool]
_RUN_ROWS: list[Row] = [
    ("p50 ms", "p50_ms", "{:.2f}", True),
    ("p99 ms", "p99_ms", "{:.2f}", True),
    ("ops/s", "ops_per_s", "{:,.0f}", True),
    ("client CPU µs/op", "cpu_us_per_op", "{:,.0f}", True),
    ("RSS growth MB", "rss_growth_mb", "{:.1f}", True),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}", True),
    ("server CPU µs/op", "server_cpu_us_per_op", "{:,.0f}", True),
    ("errors / ops", "errors_of_n", "{}", False),
    ("stored on server", "stored", "{:,}", False),
]
_STREAM_ROWS: list[Row] = [
    ("TTFC p50 ms", "ttfc_p50_ms", "{:.2f}", True),
    ("TTFC p99 ms", "ttfc_p99_ms", "{:.2f}", True),
    ("chunk gap µs", "chunk_gap_us", "{:.1f}", True),
    ("chunk gap µs, long", "chunk_gap_long_us", "{:.1f}", True),
    ("CPU µs/chunk (slope)", "chunk_cpu_us", "{:.1f}", True),
    ("last text→id ms", "final_delay_ms", "{:.2f}", True),
    ("client CPU µs/stream", "cpu_us_per_op", "{:,.0f}", True),
    ("errors / ops", "errors_of_n", "{}", False),
    ("stored on server", "stored", "{:,}", False),
]
_LOG_ROWS: list[Row] = [
    ("caller p50 µs", "p50_us", "{:,.1f}", True),
    ("caller p99 µs", "p99_us", "{:,.1f}", True),
    ("calls/s", "calls_per_s", "{:,.0f}", True),
    ("flush s", "flush_s", "{:.2f}", False),
    ("shipped rec/s", "shipped_per_s", "{:,.0f}", True),
    ("client CPU µs/op", "cpu_us_per_op", "{:,.1f}", True),
    ("big batch: calls", "mem_n", "{:,.0f}", False),
    ("big batch: RSS growth MB", "mem_growth_mb", "{:.1f}", False),
    ("big batch: calls/s", "mem_calls_per_s", "{:,.0f}", False),
    ("big batch: shipped rec/s", "mem_shipped_per_s", "{:,.0f}", False),
    ("errors / ops", "errors_of_n", "{}", False),
    ("stored on server", "stored", "{:,}", False),
]
_IMPORT_ROWS: list[Row] = [
    ("import ms", "import_ms", "{:.0f}", True),
    ("import CPU ms", "cpu_ms", "{:.0f}", True),
]
_FIRST_RUN_ROWS: list[Row] = [
    ("first run() ms, imports incl.", "first_run_ms", "{:.0f}", True),
    ("its CPU ms", "cpu_ms", "{:.0f}", True),
]


def rows_for(scenario: str) -> list[Row]:
    if scenario == "import":
        return _IMPORT_ROWS
    if scenario == "first_run":
        return _FIRST_RUN_ROWS
    if scenario.startswith("stream"):
        return _STREAM_ROWS
    if scenario.startswith("log_request"):
        return _LOG_ROWS
    return _RUN_ROWS


def aggregate(runs: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{scenario: {impl: {field: median (or sum for counts)}}}`` over the repeats."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        grouped[(run["scenario"], run["impl"])].append(run)
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (scenario, impl), group in grouped.items():
        merged: dict[str, Any] = {"repeats": len(group)}
        failures = [r["failed"] for r in group if r.get("failed")]
        if failures:
            merged["failed"] = failures
        fields = {k for r in group for k, v in r.items() if _number(v)}
        for field in fields:
            values = [r[field] for r in group if _number(r.get(field))]
            merged[field] = sum(values) if field in _SUMMED else statistics.median(values)
        samples = [s for r in group for s in r.get("error_samples", [])]
        if samples:
            merged["error_samples"] = samples[:3]
        if "n" in merged:
            merged["errors_of_n"] = f"{merged.get('errors', 0):,}/{merged['n']:,}"
        out[scenario][impl] = merged
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _ratio(a: Any, b: Any) -> str:
    if not (_number(a) and _number(b)) or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def render_table(medians: dict[str, dict[str, dict[str, Any]]], order: list[str]) -> str:
    """One block of rows per scenario; ratio columns are promptrun divided by the other."""
    header = ("scenario", "metric", *IMPL_COLUMNS, *RATIO_COLUMNS)
    lines: list[tuple[str, ...]] = []
    for scenario in order:
        by_impl = medians.get(scenario)
        if not by_impl:
            continue
        for i, (label, field, fmt, ratio) in enumerate(rows_for(scenario)):
            values = [by_impl.get(impl, {}).get(field) for impl in IMPL_COLUMNS]
            if all(v is None for v in values):
                continue
            pr = values[0]
            ratios = [_ratio(pr, v) if ratio else "" for v in values[1:]]
            cells = [
                _fmt(fmt, v) if impl in by_impl else ""
                for impl, v in zip(IMPL_COLUMNS, values, strict=True)
            ]
            lines.append((scenario if i == 0 else "", label, *cells, *ratios))
        lines.append(("",) * len(header))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = []
    for r in [header, tuple("-" * w for w in widths), *lines]:
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def render_problems(medians: dict[str, dict[str, dict[str, Any]]], order: list[str]) -> str:
    """Failed workers and sample error messages, one line each."""
    out = []
    for scenario in order:
        for impl, merged in medians.get(scenario, {}).items():
            for failure in merged.get("failed", []):
                out.append(f"  {scenario} {impl}: worker FAILED: {failure[:300]}")
            if merged.get("errors"):
                samples = " | ".join(merged.get("error_samples", []))[:300]
                out.append(f"  {scenario} {impl}: {merged['errors']:,} errors, e.g. {samples}")
    return "\n".join(out)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: what was measured and whether it was met."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run

    def line(self) -> str:
        mark = {True: "met   ", False: "MISSED", None: "n/a   "}[self.met]
        return f"[{mark}] {self.name}: {self.measured} (target {self.goal})"


def _at_most(limit: float, value: float) -> bool:
    return value <= limit


def _get(m: dict[str, dict[str, dict[str, Any]]], scenario: str, impl: str, field: str) -> Any:
    value = m.get(scenario, {}).get(impl, {}).get(field)
    return value if _number(value) else None


def check_targets(m: dict[str, dict[str, dict[str, Any]]]) -> list[Target]:
    """The issue's targets, each computed from the medians (issue 15's first)."""
    out: list[Target] = []

    def add(name: str, goal: str, parts: list[tuple[str, Any]], ok: Callable[[Any], bool]) -> None:
        known = [(label, v) for label, v in parts if v is not None]
        if not known:
            out.append(Target(name, goal, "not measured", None))
            return
        measured = "; ".join(label.format(v) for label, v in known)
        out.append(Target(name, goal, measured, all(ok(v) for _, v in known)))

    def diff(scenario: str, field: str, a: str = "promptrun", b: str = "raw") -> Any:
        x, y = _get(m, scenario, a, field), _get(m, scenario, b, field)
        return None if x is None or y is None else x - y

    def ratio(scenario: str, field: str, a: str, b: str) -> Any:
        x, y = _get(m, scenario, a, field), _get(m, scenario, b, field)
        return None if x is None or not y else x / y

    # -- issue 15: the floor, the raw SDK, the peer --------------------------------------
    for s in ("async_run_c50", "async_run_c500"):
        add(
            f"{s}: client CPU per run vs the floor (hosted shapes; promptrun serve)",
            "<= 1.5x",
            [
                ("{:.2f}x", ratio(s, "cpu_us_per_op", "promptrun", "floor")),
                ("{:.2f}x", ratio(s, "cpu_us_per_op", "promptrun", "floor-batched")),
            ],
            lambda v: v <= 1.5,
        )
    for s in ("async_run_c50", "async_run_c500", "async_run_c2000"):
        add(f"{s}: errors", "0", [("{:.0f}", _get(m, s, "promptrun", "errors"))], lambda v: v == 0)
        add(
            f"{s}: throughput vs the floor (hosted; serve)",
            ">= 0.8x",
            [
                ("{:.2f}x", ratio(s, "ops_per_s", "promptrun", "floor")),
                ("{:.2f}x", ratio(s, "ops_per_s", "promptrun", "floor-batched")),
            ],
            lambda v: v >= 0.8,
        )
        add(
            f"{s}: throughput vs raw SDK (default transport)",
            ">= 1.5x",
            [("{:.2f}x", ratio(s, "ops_per_s", "promptrun", "raw"))],
            lambda v: v >= 1.5,
        )
    add(
        "async_run_c1: client CPU vs raw SDK (default transport)",
        "<= 0.5x",
        [("{:.2f}x", ratio("async_run_c1", "cpu_us_per_op", "promptrun", "raw"))],
        lambda v: v <= 0.5,
    )
    add(
        "async_run_c1: client CPU vs raw SDK on aiohttp",
        "<= 0.7x",
        [("{:.2f}x", ratio("async_run_c1", "cpu_us_per_op", "promptrun", "raw-aiohttp"))],
        lambda v: v <= 0.7,
    )
    add(
        "sync_run_warm: client CPU vs raw sync SDK",
        "<= 1.0x",
        [("{:.2f}x", ratio("sync_run_warm", "cpu_us_per_op", "promptrun", "raw"))],
        lambda v: v <= 1.0,
    )
    add(
        "sync_run_warm: client CPU vs peer",
        "<= 0.5x",
        [("{:.2f}x", ratio("sync_run_warm", "cpu_us_per_op", "promptrun", "peer"))],
        lambda v: v <= 0.5,
    )
    add(
        "sync_run_warm: p50 vs raw sync SDK",
        "within +0.5 ms",
        [("{:+.2f} ms", diff("sync_run_warm", "p50_ms"))],
        lambda v: v <= 0.5,
    )
    for s in ("stream_async", "stream_sync"):
        add(
            f"{s}: CPU per chunk vs raw SDK (slope)",
            "<= 1.0x",
            [("{:.2f}x", ratio(s, "chunk_cpu_us", "promptrun", "raw"))],
            lambda v: v <= 1.0,
        )
    add(
        "first run() in a fresh process, imports included, vs the SDK transport (today)",
        "<= 0.5x",
        [("{:.2f}x", ratio("first_run", "first_run_ms", "promptrun", "promptrun-sdk"))],
        lambda v: v <= 0.5,
    )
    # -- earlier issues ------------------------------------------------------------------
    add(
        "warm run() at c=1 vs raw, p50",
        "within +1 ms",
        [
            ("sync {:+.2f} ms", diff("sync_run_warm", "p50_ms")),
            ("async {:+.2f} ms", diff("async_run_c1", "p50_ms")),
        ],
        lambda v: v <= 1.0,
    )
    runs = ["sync_run_warm", "async_run_c1", "async_run_c50", "async_run_c200"]
    runs += ["async_run_c500", "async_run_c2000"]
    add(
        "client CPU per non-streaming run vs raw",
        "<= 1.3x",
        [(s + " {:.2f}x", ratio(s, "cpu_us_per_op", "promptrun", "raw")) for s in runs],
        lambda v: v <= 1.3,
    )
    asyncs = [s for s in runs if s.startswith("async")]
    add(
        "CPU saved vs peer async (peer/promptrun)",
        ">= 20x",
        [(s + " {:.1f}x", ratio(s, "cpu_us_per_op", "peer", "promptrun")) for s in asyncs],
        lambda v: v >= 20,
    )
    add(
        "CPU saved vs peer sync (peer/promptrun)",
        ">= 3x",
        [
            (s + " {:.1f}x", ratio(s, "cpu_us_per_op", "peer", "promptrun"))
            for s in ("sync_run_cold", "sync_run_warm")
        ],
        lambda v: v >= 3,
    )
    for s in ("async_run_c500", "async_run_c2000"):
        add(
            f"{s}: throughput vs raw",
            ">= 0.8x",
            [("{:.2f}x", ratio(s, "ops_per_s", "promptrun", "raw"))],
            lambda v: v >= 0.8,
        )
        peer = m.get(s, {}).get("peer", {})
        if peer.get("ops_per_s") == 0 and _get(m, s, "promptrun", "ops_per_s"):
            each = (peer.get("n") or 0) / max(peer.get("repeats") or 1, 1)
            out.append(
                Target(
                    f"{s}: throughput vs peer",
                    ">= 10x",
                    f"the peer's median run finished none of its {each:,.0f} calls in its time cap",
                    True,
                )
            )
        else:
            add(
                f"{s}: throughput vs peer",
                ">= 10x",
                [("{:.1f}x", ratio(s, "ops_per_s", "promptrun", "peer"))],
                lambda v: v >= 10,
            )
        add(
            f"{s}: RSS growth vs raw",
            "<= 1.5x",
            [("{:.2f}x", ratio(s, "rss_growth_mb", "promptrun", "raw"))],
            lambda v: v <= 1.5,
        )
    add(
        "stream TTFC vs raw, p50",
        "within +1 ms",
        [
            ("async {:+.2f} ms", diff("stream_async", "ttfc_p50_ms")),
            ("sync {:+.2f} ms", diff("stream_sync", "ttfc_p50_ms")),
        ],
        lambda v: v <= 1.0,
    )
    add(
        "stream: last text chunk to the item with request_id, p50",
        "<= 1 ms",
        [
            ("async {:.2f} ms", _get(m, "stream_async", "promptrun", "final_delay_ms")),
            ("sync {:.2f} ms", _get(m, "stream_sync", "promptrun", "final_delay_ms")),
        ],
        lambda v: v <= 1.0,
    )
    for s, limit in (("stream_async", 30.0), ("stream_sync", 100.0)):
        add(
            f"{s}: per-chunk overhead vs raw (CPU slope; gap)",
            f"<= {limit:.0f} µs",
            [
                ("CPU {:+.1f} µs", diff(s, "chunk_cpu_us")),
                ("gap {:+.1f} µs", diff(s, "chunk_gap_long_us")),
            ],
            functools.partial(_at_most, limit),
        )
    for s in ("log_request_async", "log_request_sync"):
        add(f"{s}: caller p50", "<= 20 µs", [("{:.1f} µs", _get(m, s, "promptrun", "p50_us"))],
            lambda v: v <= 20)  # fmt: skip
        add(f"{s}: enqueues/s", ">= 50,000",
            [("{:,.0f}/s", _get(m, s, "promptrun", "calls_per_s"))], lambda v: v >= 50_000)  # fmt: skip
        add(
            f"{s}: shipping",
            ">= 5,000 rec/s",
            [
                ("{:,.0f} rec/s", _get(m, s, "promptrun", "shipped_per_s")),
                ("big batch {:,.0f} rec/s", _get(m, s, "promptrun", "mem_shipped_per_s")),
            ],
            lambda v: v >= 5_000,
        )
        per_record = None
        grown, count = _get(m, s, "promptrun", "mem_growth_mb"), _get(m, s, "promptrun", "mem_n")
        if grown is not None and count:
            per_record = grown / count * 100_000
        add(f"{s}: RSS with 100,000 queued", "< 100 MB",
            [("{:.1f} MB" + ("" if count == 100_000 else " (scaled)"), per_record)],
            lambda v: v < 100)  # fmt: skip
    add("import promptrun", "< 100 ms", [("{:.0f} ms", _get(m, "import", "promptrun", "import_ms"))],
        lambda v: v < 100)  # fmt: skip
    return out
