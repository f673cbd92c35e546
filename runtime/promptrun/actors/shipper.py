"""LogShipper: ships log records in the background; nothing it was handed is lost silently.

Callers hand records over with a non-blocking ``submit``, which encodes them and appends them
to the spool (a write-ahead journal, see :mod:`promptrun.actors._spool`) before returning, so
a record survives the process being killed. The actor reads them back in order and ships them
in batches through promptrun's ingest endpoint, or one request per record on servers without
it (see :mod:`promptrun.actors._delivery`), one batch at a time, so a ``track.*`` call is
shipped after the record it names.

When the server cannot be reached the records stay where they are and the actor tries again
with backoff; when it answers again, what waited (and what dead processes sharing the folder
left) is replayed oldest first, a batch in turn with new records so these are not held up.
If the spool cannot be written, records wait in memory (bounded, counted, one warning).
``drain`` is the last word at shutdown: ship what is ours within the caller's deadline.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import msgspec
from anyio.abc import TaskStatus

from promptrun._errors import PromptLayerNotFoundError, PromptLayerUnexpectedAnswerError
from promptrun._http import ApiTransport
from promptrun.actors._delivery import (
    UNREACHABLE,
    IdMap,
    Mode,
    Outcome,
    discover,
    ship_batch,
    ship_one,
)
from promptrun.actors._refused import DeadLetters
from promptrun.actors._spool import Segment, Spool, Taken
from promptrun.actors._surrogates import replace_surrogates, surrogate_field, unsendable
from promptrun.pipeline import encode_record
from promptrun.wire.ingest import Record

__all__ = ["LogShipper", "ShipperStats"]

logger = logging.getLogger("promptlayer")

_MAX_DEFERRALS = 3
_BATCH_BYTES = 1024 * 1024  # well under a server's body limit (promptrun's: 4 MB)
_BACKOFF_FIRST, _BACKOFF_MAX = 0.25, 5.0
_IDLE_TICK = 1.0  # an idle actor looks around this often (stop, a missed wake-up)
_SCAN_EVERY = 10.0  # seconds between looks for segments left by processes that ended
# Against a server that takes batches the linger adapts to the pace of the records: while
# batches go out with fewer records than this it grows to what would gather this many at
# the pace seen (up to the client's ``linger_max``); while they carry twice as many it
# halves back towards the base linger.
_BATCH_TARGET = 16
_MEMORY: Literal["memory"] = "memory"
_MODE_TEXT = {
    "ingest": "in batches (the promptrun ingest endpoint)",
    "per-record": "one request per record (the PromptLayer API's endpoints)",
}
_decode_id = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass(slots=True)
class ShipperStats:
    """Counters of everything the shipper was handed and what became of it.

    ``queued``: handed over. ``shipped``: the server has it. ``spooled``: had to wait on disk
    (the server was unreachable, or the client closed first). ``replayed``: shipped after
    waiting, or left by a process that ended. ``dropped``: lost (over ``spool_max_bytes``, the
    memory bound while the spool was unwritable, damage on disk). ``failed``: refused by the
    server, or could not be encoded. ``pending``: waiting to be shipped right now, of which
    ``in_memory`` only in memory because the spool could not be written.
    """

    queued: int = 0
    shipped: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    failed: int = 0
    pending: int = 0
    in_memory: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class LogShipper:
    """Owns the spool, the records the spool could not take, and the shipping loop."""

    def __init__(
        self,
        transport: ApiTransport,
        *,
        spool_dir: Path,
        spool_max_bytes: int,
        channel_size: int,
        batch_size: int,
        linger: float = 0.05,
        linger_max: float = 0.5,
    ) -> None:
        self._transport = transport
        self.encode = encode_record
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.refused = DeadLetters(spool_dir, max_bytes=spool_max_bytes)
        self.stats = ShipperStats()
        self._batch_size = batch_size
        self._linger = linger
        self._linger_max = max(linger, linger_max)
        self._linger_now = linger  # adapted in ingest mode, see _adapt_linger
        # Records the spool could not take (an unwritable folder, a full disk), oldest first.
        self._memory: deque[bytes] = deque()
        self._memory_max = channel_size
        self._memory_in = 0  # ever put in memory
        self._memory_inflight = 0  # the first ones, in the batch being shipped
        self._memory_out = 0  # of those, settled or dropped
        self._memory_lock = threading.Lock()
        self._memory_held = False
        self._spool_error: OSError | None = None
        self._spool_retry_at = 0.0
        self._count_lock = threading.Lock()
        self._mode: Mode | None = None
        self._mode_said: Mode | None = None  # the mode last logged (said once, not per retry)
        self._ids = IdMap()
        self._deferrals: dict[bytes, int] = {}
        self._down = False
        self._down_until = 0.0
        self._backoff = _BACKOFF_FIRST
        self._backlog_turn = False
        self._left = 0  # records left on disk when the spool was released
        self._replaying = 0  # replayed since the backlog was last empty
        # Waking the actor: set in run(), in the runtime's loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self.stopped: anyio.Event | None = None
        self._waiting = False
        self._wake_scheduled = False
        self._kicked = False
        self._stopping = False
        # Who ships: the actor or its runtime's shutdown, until another thread takes over
        # (interpreter exit, a loop that stopped for good). A batch from an older epoch is
        # neither settled nor given back: the new shipper started from what was settled.
        self._epoch = 0
        self._halting = False
        self._busy: anyio.Event | None = None  # a batch is in flight (in the actor's loop)
        self.taken_over = False
        #: With tracing on: a context manager giving each shipped batch its span.
        self.batch_span: Callable[[int, str], AbstractContextManager[Any]] | None = None

    # -- intake (the caller's side; never blocks on the network) -----------------------
    def submit(self, record: Record, *, caller: str | None = None) -> None:
        data = self.encode_or_count(record, caller=caller)
        if data is not None:
            self.submit_encoded(data)

    def encode_or_count(self, record: Record, *, caller: str | None = None) -> bytes | None:
        """The record's bytes; None (counted as failed, logged) when it cannot be encoded.

        Text with a lone surrogate raises PromptLayerValidationError naming the field when
        ``caller`` (``"log_request()"``) handed the record over itself; otherwise (a run's
        record, after the provider answered) it is replaced by U+FFFD, with a warning."""
        try:
            return self.encode(record)
        except Exception as exc:  # a logging problem must never fail the caller's run
            where = surrogate_field(record.body) if isinstance(exc, UnicodeEncodeError) else None
            if where is not None:
                if caller is not None:
                    raise unsendable(caller, where) from None
                logger.warning(
                    "log record %s: %s holds a lone surrogate, which cannot be sent as UTF-8 "
                    "JSON; every such character in the record was replaced by U+FFFD",
                    record.client_request_id,
                    where,
                )
                return self.encode_or_count(
                    msgspec.structs.replace(record, body=replace_surrogates(record.body))
                )
            self.stats.failed += 1
            logger.error(
                "promptrun could not encode log record %s: %s", record.client_request_id, exc
            )
            return None

    def submit_encoded(self, data: bytes) -> None:
        """Take one encoded record, from the runtime's loop: on disk before this returns."""
        self._accept(data)
        if self._waiting and self._wake is not None:
            self._waiting = False
            self._wake.set()

    def submit_threadsafe(self, loop: asyncio.AbstractEventLoop, data: bytes) -> None:
        """Take one encoded record from another thread (the sync client's callers).

        The record is written here, in the caller's thread; the loop is woken only when the
        actor is idle, so a burst from a thread costs one wake-up, not one per record.
        """
        self._accept(data)
        if self._waiting and not self._wake_scheduled:
            self._wake_scheduled = True
            try:
                loop.call_soon_threadsafe(self._wake_from_thread)
            except RuntimeError:  # the loop is closed: the exit hook ships what is on disk
                self._wake_scheduled = False

    def _wake_from_thread(self) -> None:
        # Cleared before waking: a record appended after this line either is seen by the
        # actor's next look or schedules a new wake-up.
        self._wake_scheduled = False
        if self._waiting and self._wake is not None:
            self._waiting = False
            self._wake.set()

    def _accept(self, data: bytes) -> None:
        if self._down:
            with self._count_lock:
                self.stats.spooled += 1
        if self._spool_error is None or time.monotonic() >= self._spool_retry_at:
            try:
                self.spool.append(data)
            except OSError as exc:
                self._spool_failed(exc)
            else:
                if self._spool_error is not None:
                    self._spool_error = None
                    logger.info("promptrun can write its spool %s again", self.spool.folder)
                return
        self._keep_in_memory(data)

    def _spool_failed(self, exc: OSError) -> None:
        self._spool_retry_at = time.monotonic() + 1.0
        if self._spool_error is None:
            self._spool_error = exc
            logger.warning(
                "promptrun cannot write its spool folder %s (%s): keeping up to %d log records "
                "in memory and retrying; they are lost if the process is killed before they "
                "ship. Fix the folder's permissions or free some space, or pass spool_dir=...",
                self.spool.folder,
                exc,
                self._memory_max,
            )

    def _keep_in_memory(self, data: bytes) -> None:
        with self._memory_lock:
            self._memory.append(data)
            self._memory_in += 1
            if len(self._memory) <= self._memory_max:
                return
            # The oldest that is not being shipped right now goes.
            del self._memory[min(self._memory_inflight, len(self._memory) - 1)]
            self._memory_out += 1
            with self._count_lock:
                self.stats.dropped += 1
                first = self.stats.dropped == 1
        if first:
            logger.warning(
                "promptrun dropped log records: the spool %s is not writable and %d records "
                "already wait in memory (the rest are counted in stats()['dropped'])",
                self.spool.folder,
                self._memory_max,
            )

    # -- what callers see ----------------------------------------------------------------
    def snapshot(self) -> dict[str, int]:
        """The counters, with what is waiting right now."""
        stats = self.stats.as_dict()
        stats["queued"] = self.spool.appended + self._memory_in  # counted under their locks
        stats["dropped"] += self.spool.dropped
        stats["in_memory"] = len(self._memory)
        stats["pending"] = self.spool.pending() + len(self._memory) + self._left
        return stats

    def server_id(self, client_id: str) -> int | None:
        return self._ids.get(client_id)

    async def flush(self, timeout: float | None) -> bool:
        """Wait until everything handed over so far, and what the spool holds, is shipped.

        Keeps trying (with the outage backoff) until then or until ``timeout``. True only
        when every record handed over so far reached the server; False while any waits, and
        for good once any was refused (``failed``) or lost (``dropped``).
        """
        with anyio.move_on_after(timeout) as scope:
            await self._adopt()  # "the spool" includes what processes that ended left
            targets = [(seg, seg.count) for seg in self.spool.segments]
            memory = self._memory_in
            self._kick()
            while not self._stopping:
                progress = self._progress
                if self._reached(targets, memory) or progress is None:
                    break
                await progress.wait()
        if scope.cancelled_caught:
            return False
        lost = self.stats.dropped + self.spool.dropped + self.stats.failed
        return self._reached(targets, memory) and not lost

    def _reached(self, targets: list[tuple[Segment, int]], memory: int) -> bool:
        return self._memory_out >= memory and all(seg.done >= n for seg, n in targets)

    # -- the actor ---------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = anyio.Event()
        if self._progress is None:  # a restart keeps it: flush() may be waiting on it
            self._progress = anyio.Event()
        self.stopped = anyio.Event()
        task_status.started()
        try:
            await self._adopt()
            while await self._wait_for_work() and not self._halting:
                await self._ship_next(self._transport, adopted=True)
        finally:
            self._waiting = False
            self.stopped.set()
            self._progressed()

    def stop(self) -> None:
        """Stop after the batch in flight (from the runtime's loop, or when it is not running)."""
        self._stopping = True
        if self._loop is not None and _running_loop() is self._loop:
            self._kick()
            self._progressed()

    def _kick(self) -> None:
        self._kicked = True
        if self._wake is not None:
            self._wake.set()

    async def _wait_for_work(self) -> bool:
        """Until there is something to ship and the backoff allows it; False on stop."""
        next_scan = time.monotonic() + _SCAN_EVERY
        while not self._stopping:
            now = time.monotonic()
            if now >= next_scan:
                await self._adopt()
                next_scan = now + _SCAN_EVERY
            if now < self._down_until:
                await self._nap(min(self._down_until - now, _IDLE_TICK))
                continue
            self._waiting = True  # before looking: see submit_threadsafe
            if self._has_work():
                self._waiting = False
                break
            await self._nap(_IDLE_TICK)
            self._waiting = False
        else:
            return False
        if self._linger > 0 and not self._kicked and self._unread_stream() < self._batch_size:
            # Let a batch build up: a request per record would cost more CPU than the
            # provider call it logs. The records are on disk already; flush() and stop cut
            # the wait short.
            await self._nap(self._linger_now if self._mode == "ingest" else self._linger)
            if not self._kicked and self._mode == "ingest":
                self._adapt_linger(self._unread_stream())
        self._kicked = False
        return not self._stopping

    def _adapt_linger(self, waiting: int) -> None:
        """A sequential caller's records trickle in: wait longer, so one request carries
        several (bounded by ``linger_max``); a busy one fills batches: back to the base."""
        if waiting < _BATCH_TARGET:
            grown = self._linger_now * _BATCH_TARGET / max(waiting, 1)
            self._linger_now = min(self._linger_max, grown)
        elif waiting >= 2 * _BATCH_TARGET:
            self._linger_now = max(self._linger, self._linger_now / 2)

    async def _nap(self, seconds: float) -> None:
        assert self._wake is not None
        with anyio.move_on_after(seconds):
            await self._wake.wait()
        if self._wake.is_set():
            self._wake = anyio.Event()

    def _has_work(self) -> bool:
        return bool(self._memory) or any(s.unread for s in self.spool.segments)

    def _unread_stream(self) -> int:
        return sum(s.unread for s in self.spool.segments if not s.backlog)

    def _progressed(self) -> None:
        progress = self._progress
        if progress is not None and _running_loop() is self._loop:
            self._progress = anyio.Event()
            progress.set()

    async def _adopt(self) -> None:
        # Reads files: off the loop. The loop's default executor, not anyio's worker threads:
        # those stay alive until their loop shuts down properly, and a loop that is just
        # closed would leave one blocking interpreter exit.
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.spool.adopt_orphans)
        except RuntimeError:  # the executor is shut down (interpreter exit)
            return

    async def adopt_kin(self) -> None:
        """Take over what this process's forked children left in the spool (they ended
        without shipping: SIGTERM, ``os._exit``), for :meth:`drain` to ship as our own."""
        adopt = functools.partial(self.spool.adopt_orphans, kin_only=True)
        try:
            await asyncio.get_running_loop().run_in_executor(None, adopt)
        except RuntimeError:  # interpreter exit: no thread starts; this loop is ours alone
            adopt()

    # -- shipping ----------------------------------------------------------------------
    async def drain(self, transport: ApiTransport, *, adopted: bool = False) -> None:
        """Ship everything this runtime was handed; the caller bounds it with a deadline.

        Segments adopted from other processes are shipped only if ``adopted``, or if this
        process forked them (see :meth:`adopt_kin`); the others wait for the next owner.
        Used at shutdown, from the runtime's loop or a fresh one.
        """
        pause = 0.05
        epoch = self._epoch
        while self.spool.pending(adopted=adopted, kin=True) or self._memory:
            if self._halting or epoch != self._epoch:
                return  # another thread ships from now on
            before = self.stats.shipped + self.stats.failed + self.spool.dropped
            await self._ship_next(transport, adopted=adopted)
            if self.stats.shipped + self.stats.failed + self.spool.dropped == before:
                await anyio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def quiesce(self) -> bool:
        """In the runtime's loop: hand the shipper to another thread.

        Starts no more batches and waits for the one in flight. False if the spool was
        already released (the runtime finished first): there is nothing to hand over.
        """
        if self.spool.released:
            return False
        self._halting = True
        self.stop()
        while self._busy is not None:
            await self._busy.wait()
        return True

    @property
    def handed_over(self) -> bool:
        """Another thread ships from now on (or is about to): the runtime must not let go."""
        return self._halting or self.taken_over

    def take_over(self) -> None:
        """From now on the calling thread ships (after ``quiesce``, or with the loop dead)."""
        self._epoch += 1
        self._halting = False
        self._stopping = True
        self.taken_over = True
        for seg in self.spool.segments:
            self.spool.rewind(seg)
        with self._memory_lock:
            self._memory_inflight = 0

    async def _ship_next(self, transport: ApiTransport, *, adopted: bool) -> None:
        # Busy from the first await: a handover (quiesce) waits for all of it.
        busy = self._busy_start()
        try:
            await self._ship_one_batch(transport, adopted=adopted)
        finally:
            self._busy_end(busy)

    async def _ship_one_batch(self, transport: ApiTransport, *, adopted: bool) -> None:
        if self._mode is None:
            try:
                self._mode = await discover(transport)
            except UNREACHABLE as exc:
                self._mark_down(exc)
                return
            if self._mode != self._mode_said:
                self._mode_said = self._mode
                logger.info(
                    "promptrun ships log records to %s %s",
                    transport.base_url,
                    _MODE_TEXT[self._mode],
                )
        source = self._pick(adopted)
        if source == _MEMORY:
            await self._ship_memory(transport)
        elif isinstance(source, Segment):
            await self._ship_segment(transport, source)

    def _pick(self, adopted: bool) -> Segment | Literal["memory"] | None:
        """Memory first (the most at risk), then new records and the backlog in turn."""
        if self._memory and not self._memory_held:
            return _MEMORY
        segments = [s for s in self.spool.segments if adopted or not s.adopted or s.kin]
        stream = next((s for s in segments if not s.backlog and s.unread), None)
        if stream is not None and stream.held:
            stream = None  # a track call waits for its record: the stream stays in order
        backlog = next((s for s in segments if s.backlog and s.unread and not s.held), None)
        if stream is not None and backlog is not None:
            self._backlog_turn = not self._backlog_turn
            return backlog if self._backlog_turn else stream
        if stream is not None or backlog is not None:
            return stream or backlog
        # Only held records are left: what they wait for is not coming; try them again.
        self._memory_held = False
        held = [s for s in segments if s.held and s.unread]
        for seg in held:
            seg.held = False
        if self._memory:
            return _MEMORY
        return held[0] if held else None

    async def _ship_segment(self, transport: ApiTransport, seg: Segment) -> None:
        epoch = self._epoch
        taken = self.spool.take(seg, self._batch_size, _BATCH_BYTES)

        def settle(out: Outcome) -> None:
            if epoch == self._epoch:
                self._settle(seg, taken, out)

        try:
            if taken.records:
                await self._ship(transport, taken.records, settle)
        finally:
            if epoch == self._epoch:
                # Cancelled or cut short: what was not settled is taken again next time.
                self.spool.rewind(seg)

    async def _ship_memory(self, transport: ApiTransport) -> None:
        epoch = self._epoch
        with self._memory_lock:
            n = self._memory_inflight = min(len(self._memory), self._batch_size)
            batch = list(itertools.islice(self._memory, n))
        settled = 0

        def settle(out: Outcome) -> None:
            nonlocal settled
            if epoch != self._epoch:
                return
            with self._memory_lock:
                for _ in range(out.settled - settled):
                    self._memory.popleft()
                self._memory_inflight -= out.settled - settled
            self._memory_out += out.settled - settled
            settled = out.settled
            if out.deferred:
                self._memory_held = True
            self._count(out, replay=self._down)

        try:
            await self._ship(transport, batch, settle)
        finally:
            if epoch == self._epoch:
                with self._memory_lock:
                    self._memory_inflight = 0

    async def _ship(
        self, transport: ApiTransport, batch: list[bytes], settle: Callable[[Outcome], None]
    ) -> None:
        if self.batch_span is None:
            await self._ship_batch(transport, batch, settle)
            return
        with self.batch_span(len(batch), self._mode or "unknown") as span:
            shipped, failed = self.stats.shipped, self.stats.failed
            await self._ship_batch(transport, batch, settle)
            span.set_attribute("promptrun.log.shipped", self.stats.shipped - shipped)
            span.set_attribute("promptrun.log.failed", self.stats.failed - failed)

    async def _ship_batch(
        self, transport: ApiTransport, batch: list[bytes], settle: Callable[[Outcome], None]
    ) -> None:
        started = time.perf_counter()
        shipped = self.stats.shipped
        if self._mode == "ingest":
            settle(await ship_batch(transport, batch, self._ids, self._may_defer, self.refused))
        else:
            await self._ship_each(transport, batch, settle)
        if self.stats.shipped > shipped:
            logger.debug(
                "shipped %d log records in %.1f ms",
                self.stats.shipped - shipped,
                (time.perf_counter() - started) * 1000,
            )

    def _busy_start(self) -> anyio.Event | None:
        if self._loop is None or _running_loop() is not self._loop:
            return None
        busy = self._busy = anyio.Event()
        return busy

    def _busy_end(self, busy: anyio.Event | None) -> None:
        if busy is not None:
            if self._busy is busy:
                self._busy = None
            busy.set()

    async def _ship_each(
        self, transport: ApiTransport, batch: list[bytes], settle: Callable[[Outcome], None]
    ) -> None:
        """One request per record, settling each as it goes (a cancel repeats at most one)."""
        out = Outcome()
        for data in batch:
            try:
                status = await ship_one(transport, data, self._ids, self._may_defer, self.refused)
            except UNREACHABLE as exc:
                out.error = exc
                break
            if status == "deferred":
                out.deferred = True
                break
            out.settled += 1
            out.shipped += status == "shipped"
            out.failed += status == "failed"
            settle(Outcome(out.settled, status == "shipped", status == "failed"))
        settle(Outcome(out.settled, 0, 0, out.deferred, out.error))

    def _settle(self, seg: Segment, taken: Taken, out: Outcome) -> None:
        # out.settled counts from the start of the batch; shipped and failed are new ones.
        if out.settled:
            k = out.settled - 1
            self.spool.settle(seg, taken.ends[k], taken.base_done + taken.lines[k])
        if out.deferred:
            seg.held = True
        self._count(out, replay=seg.backlog or self._down)

    def _count(self, out: Outcome, *, replay: bool) -> None:
        with self._count_lock:
            self.stats.shipped += out.shipped
            self.stats.failed += out.failed
            if replay:
                self.stats.replayed += out.shipped
        if replay and out.shipped:
            self._replaying += out.shipped
            if not any(s.backlog and s.pending for s in self.spool.segments):
                logger.info("promptrun replayed %d spooled log records", self._replaying)
                self._replaying = 0
        if out.error is not None:
            if isinstance(out.error, PromptLayerNotFoundError | PromptLayerUnexpectedAnswerError):
                self._mode = None  # another server answers there now: ask it what it takes
            self._mark_down(out.error)
        elif out.settled:
            self._mark_up()
        self._progressed()

    def _may_defer(self, data: bytes) -> bool:
        """A track call whose record the server lacks: wait for it, a few times at most."""
        tries = self._deferrals.get(data, 0)
        if tries >= _MAX_DEFERRALS:
            self._deferrals.pop(data, None)
            return False
        self._deferrals[data] = tries + 1
        return True

    def _mark_down(self, exc: Exception) -> None:
        if not self._down:
            pending = self.spool.pending(adopted=False) + len(self._memory)
            with self._count_lock:
                self._down = True
                self.stats.spooled += pending
            logger.debug("spooled %d log records to %s", pending, self.spool.folder)
            logger.warning(
                "promptrun could not ship log records (%s); they wait in the spool %s and "
                "are retried in the background",
                exc,
                self.spool.folder,
            )
        self._down_until = time.monotonic() + self._backoff * (1 + 0.2 * random.random())
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    def _mark_up(self) -> None:
        self._backoff = _BACKOFF_FIRST
        self._down_until = 0.0
        if self._down:
            self._down = False
            waiting = self.spool.pending(adopted=False)
            # What waited becomes backlog; new records start afresh and are not held up.
            self.spool.seal_all()
            logger.info(
                "promptrun reached the server again; replaying %d spooled log records", waiting
            )

    def release(self) -> None:
        """Let go of the spool: what is not shipped stays on disk for the next client."""
        if self.spool.released:
            return
        left = self.spool.pending(adopted=False)
        if left and not self._down:
            with self._count_lock:
                self.stats.spooled += left
        self._left = left + len(self._memory)
        self.spool.release()
        if self._memory:
            with self._memory_lock:
                memory = list(self._memory)
                self._memory.clear()
            try:
                self.spool.append_many(memory)
            except OSError as exc:
                self._left -= len(memory)
                with self._count_lock:
                    self.stats.dropped += len(memory)
                logger.error(
                    "promptrun lost %d log records: the spool %s is not writable (%s)",
                    len(memory),
                    self.spool.folder,
                    exc,
                )
            else:
                with self._count_lock:
                    self.stats.spooled += len(memory)
            self._memory_out += len(memory)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
