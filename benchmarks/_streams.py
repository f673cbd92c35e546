"""Streaming measurements: time to first chunk, gaps between chunks, CPU per chunk."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from _adapters import content_of, make_async, make_sync, request_id_of
from _meter import Meter, ms, pct

__all__ = ["async_streams", "sync_streams"]


class StreamTimes:
    """Per stream: time to first item, mean gap between content chunks, last content to id."""

    def __init__(self) -> None:
        self.ttfc: list[float] = []
        self.gaps: list[float] = []
        self.final: list[float] = []
        self.items: list[int] = []

    def observe(self, began: float, stamps: list[tuple[float, bool, bool]], end: float) -> None:
        if not stamps:
            raise RuntimeError("the stream yielded nothing")
        first = stamps[0][0]
        contents = [i for i, (_, has_text, _) in enumerate(stamps) if has_text]
        if not contents:
            raise RuntimeError("the stream carried no text")
        last_i = contents[-1]
        last_t = stamps[last_i][0]
        self.ttfc.append(first - began)
        if last_i > 0:
            self.gaps.append((last_t - first) / last_i)
        with_id = [t for t, _, has_id in stamps if has_id]
        # Raw SDKs have no request id: their baseline is the end of the stream.
        self.final.append((with_id[0] if with_id else end) - last_t)
        self.items.append(len(stamps))

    def result(self) -> dict[str, Any]:
        return {
            "ttfc_p50_ms": ms(pct(self.ttfc, 0.5)),
            "ttfc_p99_ms": ms(pct(self.ttfc, 0.99)),
            "chunk_gap_us": statistics.median(self.gaps) * 1e6 if self.gaps else None,
            "final_delay_ms": ms(pct(self.final, 0.5)),
            "final_delay_p99_ms": ms(pct(self.final, 0.99)),
            "items_per_stream": statistics.median(self.items) if self.items else None,
        }


def _stamp(item: Any) -> tuple[float, bool, bool]:
    return time.perf_counter(), bool(content_of(item)), bool(request_id_of(item))


@contextlib.contextmanager
def _chunks(cfg: dict[str, Any], chunks: int) -> Iterator[None]:
    """Make the sandbox split replies into ``chunks`` pieces for a while (the server is ours)."""

    def control(value: int) -> None:
        body = json.dumps({"chunks": value}).encode()
        request = urllib.request.Request(
            cfg["control_url"],
            body,
            {"Content-Type": "application/json", "X-API-KEY": os.environ["PROMPTLAYER_API_KEY"]},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    control(chunks)
    try:
        yield
    finally:
        control(cfg["chunks"])


def _per_chunk(
    short: tuple[Meter, StreamTimes, int], long: tuple[Meter, StreamTimes, int]
) -> dict[str, Any]:
    """CPU per chunk from two chunk counts: the slope, so per-stream costs cancel out."""
    (m1, st1, n1), (m2, st2, n2) = short, long
    items1, items2 = statistics.median(st1.items), statistics.median(st2.items)
    slope = (m2.cpu / max(n2, 1) - m1.cpu / max(n1, 1)) / max(items2 - items1, 1)
    return {
        "chunk_cpu_us": slope * 1e6,
        "chunk_gap_long_us": statistics.median(st2.gaps) * 1e6 if st2.gaps else None,
        "items_per_stream_long": items2,
        "cpu_us_per_op_long": m2.cpu / max(n2, 1) * 1e6,
    }


def _sync_phase(pl: Any, n: int, cap: float) -> tuple[Meter, StreamTimes, int]:
    for _ in pl.stream():  # warm-up
        pass
    m, st = Meter(), StreamTimes()
    m.start()
    deadline, done = m.t0 + cap, 0
    while done < n and time.perf_counter() < deadline:
        done += 1
        began = time.perf_counter()
        try:
            stamps = [_stamp(item) for item in pl.stream()]
            end = time.perf_counter()
            st.observe(began, stamps, end)
        except Exception as exc:
            m.error(exc)
            continue
        m.latencies.append(end - began)
    m.flushed = pl.finish()
    m.stop()
    return m, st, done


async def _async_phase(pl: Any, n: int, cap: float) -> tuple[Meter, StreamTimes, int]:
    async for _ in await pl.stream():  # warm-up
        pass
    m, st = Meter(), StreamTimes()
    m.start()
    deadline, done = m.t0 + cap, 0
    while done < n and time.perf_counter() < deadline:
        done += 1
        began = time.perf_counter()
        try:
            stamps = [_stamp(item) async for item in await pl.stream()]
            end = time.perf_counter()
            st.observe(began, stamps, end)
        except Exception as exc:
            m.error(exc)
            continue
        m.latencies.append(end - began)
    m.flushed = await pl.finish()
    m.stop()
    return m, st, done


def _stream_result(short: tuple[Meter, StreamTimes, int], n: int) -> dict[str, Any]:
    m, st, done = short
    return m.result(done) | st.result() | {"flushed": m.flushed, "capped": done < n}


def sync_streams(impl: str, cfg: dict[str, Any], n: int, cap: float) -> dict[str, Any]:
    pl = make_sync(impl, cfg, 300)
    short = _sync_phase(pl, n, cap)
    out = _stream_result(short, n)
    if cfg.get("long_chunks"):
        with _chunks(cfg, cfg["long_chunks"]):
            out |= _per_chunk(short, _sync_phase(pl, n, cap))
    pl.close()
    return out


async def async_streams(impl: str, cfg: dict[str, Any], n: int, cap: float) -> dict[str, Any]:
    pl = make_async(impl, cfg, 300)
    short = await _async_phase(pl, n, cap)
    out = _stream_result(short, n)
    if cfg.get("long_chunks"):
        with _chunks(cfg, cfg["long_chunks"]):
            out |= _per_chunk(short, await _async_phase(pl, n, cap))
    await pl.close()
    return out
