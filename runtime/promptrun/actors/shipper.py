"""LogShipper: ships log records in the background; what it cannot ship waits on disk.

Callers hand records over with a non-blocking ``submit``, which encodes them at once (a record
in the channel is a few hundred bytes, not a tree of objects) and never waits. The actor drains
its channel in batches, lingering briefly so that one request carries many records, and ships
them through promptrun's batch endpoint when the server has one, else one request per record
as the hosted API expects. Batches go one at a time, so a ``track.*`` call is shipped after
the record it names. Records that find the channel full, that could not be shipped after
retries, or that are still queued at shutdown go to the spool, and are replayed when the
server answers again and on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskStatus

from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPIError,
    PromptLayerAPITimeoutError,
    PromptLayerError,
    PromptLayerInternalServerError,
    PromptLayerNotFoundError,
    PromptLayerRateLimitError,
)
from promptrun._http import ApiTransport
from promptrun._retry import SHIPPER_POLICY, call_with_retries
from promptrun.actors._spool import Spool
from promptrun.wire.ingest import (
    INFO_PATH,
    INGEST_PATH,
    LogRecord,
    TrackCallRecord,
    TrackRecord,
)

__all__ = ["LogShipper", "ShipperStats", "dump_provider_object"]

logger = logging.getLogger("promptlayer")

Record = TrackRecord | LogRecord | TrackCallRecord

_TRANSIENT = (
    PromptLayerInternalServerError,
    PromptLayerRateLimitError,
    PromptLayerAPIConnectionError,
    PromptLayerAPITimeoutError,
)
_TRACK_PATHS = {
    "metadata": "/library-track-metadata",
    "score": "/library-track-score",
    "prompt": "/library-track-prompt",
    "group": "/track-group",
}
_ID_MAP_SIZE = 100_000
_MAX_DEFERRALS = 3
_decode_record = msgspec.json.Decoder(Record).decode
_MODE_TEXT = {
    "ingest": "in batches (the promptrun ingest endpoint)",
    "per-record": "one request per record (the PromptLayer API's endpoints)",
}


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def dump_provider_object(obj: Any) -> Any:
    """msgspec's ``enc_hook`` for provider SDK objects (pydantic models) in a log record.

    Never raises: an object it cannot describe is logged as its ``repr``.
    """
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_none=True)
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    return repr(obj)


@dataclass(slots=True)
class ShipperStats:
    """Counters of everything the shipper was handed and what became of it."""

    queued: int = 0
    shipped: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Flush:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.ok = False


class LogShipper:
    """Owns the log channel, the spool and the shipping loop."""

    def __init__(
        self,
        transport: ApiTransport,
        *,
        spool_dir: Path,
        spool_max_bytes: int,
        channel_size: int,
        batch_size: int,
        linger: float = 0.05,
    ) -> None:
        self._transport = transport
        self.encode = msgspec.json.Encoder(enc_hook=dump_provider_object).encode
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.stats = ShipperStats()
        self._send, self._receive = anyio.create_memory_object_stream[bytes | _Flush](channel_size)
        self._batch_size = batch_size
        self._linger = linger
        self._wake = anyio.Event()  # cuts a linger short: flush, shutdown or overflow
        # Records taken from the channel and not yet shipped or spooled, oldest first: what
        # cancellation must put on disk.
        self._held: list[bytes] = []
        self._overflow: list[bytes] = []  # found the channel full; spooled in one write
        self._mode: str | None = None  # "ingest" | "per-record", learnt on first shipment
        self._down_until = 0.0
        self._outage_backoff = 0.5
        self._ids: OrderedDict[str, int] = OrderedDict()  # client id -> server id
        self._deferred: dict[str, int] = {}
        self._inbox: deque[bytes] = deque()
        self._inbox_scheduled = False
        self.stopped = anyio.Event()

    # -- intake (the caller's side; never blocks) ---------------------------------------
    def submit(self, record: Record) -> None:
        data = self.encode_or_count(record)
        if data is not None:
            self.submit_encoded(data)

    def encode_or_count(self, record: Record) -> bytes | None:
        """The record's bytes; None (counted as failed, logged) when it cannot be encoded."""
        try:
            return self.encode(record)
        except Exception as exc:  # a logging problem must never fail the caller's run
            self.stats.failed += 1
            logger.error(
                "promptrun could not encode log record %s: %s", record.client_request_id, exc
            )
            return None

    def submit_encoded(self, data: bytes) -> None:
        """Queue one encoded record (from any task of the runtime's loop)."""
        self.stats.queued += 1
        try:
            self._send.send_nowait(data)
        except anyio.WouldBlock:
            self._overflow.append(data)
            self._wake.set()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._to_spool([data], "the client is shutting down")

    def submit_threadsafe(self, loop: asyncio.AbstractEventLoop, data: bytes) -> None:
        """Queue one encoded record from another thread (the sync client's callers).

        Records gather in a deque and one loop callback drains them all, so a burst from a
        thread costs one wake-up of the loop, not one per record.
        """
        self._inbox.append(data)
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            loop.call_soon_threadsafe(self._drain_inbox)

    def _drain_inbox(self) -> None:
        # Clear the flag before draining: a record appended after this line either is
        # drained below or schedules a new drain.
        self._inbox_scheduled = False
        inbox = self._inbox
        while inbox:
            self.submit_encoded(inbox.popleft())

    async def flush(self, timeout: float | None) -> bool:
        """Ship everything submitted so far and the spool; True when nothing is left."""
        marker = _Flush()
        self._wake.set()
        with anyio.move_on_after(timeout):
            await self._send.send(marker)
            await marker.done.wait()
        return marker.ok

    def close_intake(self) -> None:
        self._wake.set()
        self._send.close()

    def close(self) -> None:
        """Release the channel (the runtime's last step; records left were spooled)."""
        self._send.close()
        self._receive.close()

    def server_id(self, client_id: str) -> int | None:
        return self._ids.get(client_id)

    # -- the actor ---------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            if self.spool.has_records():
                await self._replay()
            async with self._receive:
                while True:
                    try:
                        first = await self._receive.receive()
                    except anyio.EndOfStream:
                        break
                    if not isinstance(first, _Flush):
                        self._held = [first]
                        if (
                            self._linger > 0
                            and not self._wake.is_set()
                            and self._receive.statistics().current_buffer_used
                            < self._batch_size - 1
                        ):
                            # Let a batch build up: a request per record would cost more
                            # CPU than the provider call it logs.
                            with anyio.move_on_after(self._linger):
                                await self._wake.wait()
                    if self._wake.is_set():
                        self._wake = anyio.Event()
                    self._spool_overflow()
                    await self._handle([first, *self._drain(self._batch_size - 1)])
        finally:
            self.spool_leftovers()
            self._send.close()
            self.stopped.set()

    def _drain(self, limit: int) -> list[bytes | _Flush]:
        out: list[bytes | _Flush] = []
        while len(out) < limit:
            try:
                out.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        return out

    async def _handle(self, items: list[bytes | _Flush]) -> None:
        self._held = [i for i in items if not isinstance(i, _Flush)]
        batch: list[bytes] = []
        for item in items:
            if isinstance(item, _Flush):
                if batch:
                    await self._ship(batch)
                    batch = []
                self._spool_overflow()
                await self._replay()
                item.ok = not self.spool.has_records() and not self._overflow
                item.done.set()
            else:
                batch.append(item)
        if batch:
            await self._ship(batch)

    def _spool_overflow(self) -> None:
        if self._overflow:
            overflow, self._overflow = self._overflow, []
            self._to_spool(overflow, "the log channel was full")

    def spool_leftovers(self) -> None:
        """Put what is in flight or still queued on disk (shutdown, cancellation, loop death)."""
        left = self._held + self._overflow
        self._held, self._overflow = [], []
        while self._inbox:
            left.append(self._inbox.popleft())
        for item in self._drain(1 << 30):
            if isinstance(item, _Flush):
                item.done.set()
            else:
                left.append(item)
        if left:
            self._to_spool(left, "the client closed before they were shipped")

    # -- shipping ----------------------------------------------------------------------
    async def _ship(self, batch: list[bytes], *, held: bool = True) -> bool:
        """Ship a batch or spool it; True when the server has all of it.

        ``held`` batches are the oldest of ``self._held`` and leave it either way.
        """
        shipped = await self._ship_or_spool(batch)
        # Not in a `finally`: a cancelled shipment stays held, for spool_leftovers to keep.
        if held:
            del self._held[: len(batch)]
        return shipped

    async def _ship_or_spool(self, batch: list[bytes]) -> bool:
        if time.monotonic() < self._down_until:
            self._to_spool(batch, None)
            return False
        started = time.perf_counter()
        try:
            if self._mode is None:
                self._mode = await self._discover()
                logger.info("promptrun ships log records to %s %s", self._transport.base_url,
                            _MODE_TEXT[self._mode])  # fmt: skip
            if self._mode == "ingest":
                await self._ship_ingest(batch)
            else:
                left = await self._ship_each(batch)
                if left:
                    self._to_spool(left, None)
                    return False
        except _TRANSIENT as exc:
            self._mark_down(exc)
            self._to_spool(batch, None)
            return False
        self._outage_backoff = 0.5
        self._down_until = 0.0
        logger.debug("shipped %d log records in %.1f ms", len(batch), _ms_since(started))
        return True

    def _mark_down(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self._outage_backoff
        logger.warning(
            "promptrun could not ship log records (%s); spooling them and trying again in %.1f s",
            exc,
            self._outage_backoff,
        )
        self._outage_backoff = min(self._outage_backoff * 2, 30.0)

    async def _discover(self) -> str:
        try:
            info = await self._transport.request(
                "GET", INFO_PATH, context="asking the server what it supports"
            )
        except PromptLayerAPIError as exc:
            if isinstance(exc, _TRANSIENT):
                raise
            return "per-record"
        features = info.get("features", []) if isinstance(info, dict) else []
        return "ingest" if "ingest" in features else "per-record"

    async def _ship_ingest(self, batch: list[bytes]) -> None:
        body = b'{"records":[' + b",".join(batch) + b"]}"

        async def once() -> Any:
            return await self._transport.request(
                "POST", INGEST_PATH, body=body, context="shipping log records"
            )

        answer = await call_with_retries(SHIPPER_POLICY, "shipping log records", once, quiet=True)
        results = answer.get("results", []) if isinstance(answer, dict) else []
        defer: list[bytes] = []
        for data, result in zip(batch, results, strict=False):
            status = result.get("status")
            cid = result.get("client_request_id", "")
            if status in ("stored", "duplicate"):
                self.stats.shipped += 1
                self._deferred.pop(cid, None)
                rid = result.get("request_id")
                if rid is not None:
                    self._remember(cid, rid)
            elif self._should_defer(cid, data, str(result.get("error"))):
                defer.append(data)
            else:
                self.stats.failed += 1
                logger.warning("the server rejected log record %s: %s", cid, result.get("error"))
        if defer:
            # A track call that overtook its record (the record was spooled): try it again
            # after the spool has been replayed.
            self._to_spool(defer, None)

    def _should_defer(self, cid: str, data: bytes, error: str) -> bool:
        if b'"type":"track_call"' not in data[:40] or "not found" not in error:
            return False
        tries = self._deferred.get(cid, 0)
        if tries >= _MAX_DEFERRALS:
            self._deferred.pop(cid, None)
            return False
        self._deferred[cid] = tries + 1
        return True

    async def _ship_each(self, batch: list[bytes]) -> list[bytes]:
        """One request per record, in order (track calls stay behind their records).

        Returns the records not shipped because the server stopped answering part-way.
        """
        for i, data in enumerate(batch):
            record = _decode_record(data)
            try:
                await self._ship_one(record)
            except _TRANSIENT as exc:
                self._mark_down(exc)
                return batch[i:]
            except PromptLayerError as exc:
                self.stats.failed += 1
                logger.warning(
                    "the server refused log record %s: %s", record.client_request_id, exc
                )
            else:
                self.stats.shipped += 1
        return []

    async def _ship_one(self, record: Record) -> None:
        key = self._transport.api_key
        expect: tuple[int, ...]
        if isinstance(record, TrackRecord):
            path, expect, body = "/track-request", (200,), {**record.body, "api_key": key}
        elif isinstance(record, LogRecord):
            path, expect, body = "/log-request", (200, 201), record.body
        else:
            path, expect = _TRACK_PATHS[record.endpoint], (200,)
            body = {**record.body, "api_key": key}
            target = body.get("request_id")
            if isinstance(target, str):
                server_id = self._ids.get(target)
                if server_id is None:
                    raise PromptLayerNotFoundError(
                        f"track.{record.endpoint}: request {target} is not known to this client "
                        "(it was logged by another process or before a restart)"
                    )
                body["request_id"] = server_id
        data = self.encode(body)

        async def once() -> Any:
            return await self._transport.request(
                "POST", path, body=data, context=f"shipping to {path}", expect=expect
            )

        answer = await call_with_retries(SHIPPER_POLICY, f"shipping to {path}", once, quiet=True)
        if isinstance(answer, dict) and not isinstance(record, TrackCallRecord):
            rid = answer.get("request_id", answer.get("id"))
            if isinstance(rid, int):
                self._remember(record.client_request_id, rid)

    def _remember(self, client_id: str, server_id: int) -> None:
        self._ids[client_id] = server_id
        if len(self._ids) > _ID_MAP_SIZE:
            self._ids.popitem(last=False)

    # -- the spool ---------------------------------------------------------------------
    def _to_spool(self, records: list[bytes], why: str | None) -> None:
        if not records:
            return
        dropped_before = self.spool.dropped
        try:
            written = self.spool.append(records)
        except OSError as exc:
            self.stats.dropped += len(records)
            logger.error(
                "promptrun lost %d log records: the spool %s is not writable (%s)",
                len(records),
                self.spool.folder,
                exc,
            )
            return
        self.stats.spooled += written
        self.stats.dropped += self.spool.dropped - dropped_before
        logger.debug("spooled %d log records to %s", written, self.spool.folder)
        if why:
            logger.warning("promptrun spooled %d log records: %s", written, why)

    async def _replay(self) -> None:
        while time.monotonic() >= self._down_until:
            claimed = self.spool.claim()
            if claimed is None:
                return
            path, records = claimed
            logger.debug("replaying %d spooled log records from %s", len(records), path.name)
            replayed_before = self.stats.replayed
            shipped = 0
            try:
                for start in range(0, len(records), self._batch_size):
                    chunk = records[start : start + self._batch_size]
                    before = self.stats.spooled
                    if not await self._ship(chunk, held=False):
                        # _ship spooled this chunk again; the rest waits for the next replay.
                        self.stats.spooled = before
                        shipped = start + len(chunk)
                        break
                    shipped = start + len(chunk)
                    self.stats.replayed += len(chunk)
            except BaseException:
                # Cancelled part-way: give the unshipped rest back (the server drops repeats).
                self.spool.release(path, records[shipped:])
                raise
            self.spool.release(path, records[shipped:])
            if self.stats.replayed > replayed_before:
                logger.info("promptrun replayed %d spooled log records",
                            self.stats.replayed - replayed_before)  # fmt: skip
            if self._down_until > time.monotonic():
                return
