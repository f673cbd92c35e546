"""The on-disk spool: log records that could not be shipped yet, kept until they are.

One folder per server and API key. Each process appends to its own segment file
(``<time>-<pid>-<rand>.jsonl``, one encoded record a line, exactly as it goes on the wire).
Replay claims a whole segment by renaming it (``.claimed-<pid>``), so two processes sharing the
folder never ship the same segment; a claim left by a dead process, or by a runtime of this
process that died mid-replay, is taken over. The folder is bounded: past ``max_bytes`` the
oldest segments go, and every record that goes is counted and warned about.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

import msgspec

from promptrun.wire.ingest import LogRecord, TrackCallRecord, TrackRecord

__all__ = ["Spool"]

logger = logging.getLogger("promptlayer")

# Segments this process is replaying right now; a claim of ours not in here was left behind
# by a runtime that died mid-replay (a finished event loop) and may be taken over.
_ACTIVE_CLAIMS: set[str] = set()

_check = msgspec.json.Decoder(TrackRecord | LogRecord | TrackCallRecord)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """Append encoded records to disk; hand back whole segments for replay."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._segment: Path | None = None
        self._segment_pid = 0
        # Segments rotate at a quarter of the bound, so dropping the oldest ones keeps the
        # folder within 1.25 x max_bytes.
        self._segment_limit = max(1024, min(max_bytes // 4, 8 * 1024 * 1024))
        self.dropped = 0

    # -- writing -----------------------------------------------------------------------
    def append(self, records: list[bytes]) -> int:
        """Write records durably (one fsync per segment written); returns how many."""
        if not records:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        i = 0
        while i < len(records):
            segment = self._current_segment()
            room = self._segment_limit - _size(segment)
            chunk: list[bytes] = []
            while i < len(records) and (not chunk or room > 0):
                chunk.append(records[i])
                room -= len(records[i]) + 1
                i += 1
            with open(segment, "ab") as f:
                f.write(b"\n".join(chunk) + b"\n")
                f.flush()
                os.fsync(f.fileno())
        self._enforce_bound()
        return len(records)

    def _current_segment(self) -> Path:
        if (
            self._segment is None
            or self._segment_pid != os.getpid()  # after a fork: never the parent's file
            or _size(self._segment) >= self._segment_limit
        ):
            name = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            self._segment = self.folder / name
            self._segment_pid = os.getpid()
        return self._segment

    def _enforce_bound(self) -> None:
        segments = self._segments()
        total = sum(size for _, size in segments)
        for path, size in segments:
            if total <= self.max_bytes:
                break
            if path == self._segment:
                continue
            lost = _count_lines(path)
            path.unlink(missing_ok=True)
            total -= size
            self.dropped += lost
            logger.warning(
                "promptrun spool %s is over its limit of %d bytes: dropped the %d oldest records",
                self.folder,
                self.max_bytes,
                lost,
            )

    # -- replay ------------------------------------------------------------------------
    def _segments(self) -> list[tuple[Path, int]]:
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.glob("*.jsonl")):
            try:
                out.append((p, p.stat().st_size))
            except FileNotFoundError:
                continue
        return out

    def has_records(self) -> bool:
        if not self.folder.is_dir():
            return False
        self._reclaim_abandoned()
        return any(True for _ in self.folder.glob("*.jsonl"))

    def claim(self) -> tuple[Path, list[bytes]] | None:
        """Take the oldest segment for replay; ``None`` when there is none."""
        self._reclaim_abandoned()
        for path, _ in self._segments():
            if path == self._segment:
                self._segment = None  # start a new one; this one is being replayed
            claimed = path.with_name(f"{path.name}.claimed-{os.getpid()}")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                continue  # another process claimed it first
            _ACTIVE_CLAIMS.add(str(claimed))
            return claimed, _read(claimed)
        return None

    def release(self, claimed: Path, unshipped: list[bytes]) -> None:
        """Done with a claimed segment: drop it, keeping what was not shipped."""
        if unshipped:
            self.append(unshipped)
        claimed.unlink(missing_ok=True)
        _ACTIVE_CLAIMS.discard(str(claimed))

    def _reclaim_abandoned(self) -> None:
        if not self.folder.is_dir():
            return
        for p in self.folder.glob("*.jsonl.claimed-*"):
            pid = int(p.name.rsplit("-", 1)[1])
            mine = pid == os.getpid()
            if (mine and str(p) not in _ACTIVE_CLAIMS) or (not mine and not _pid_alive(pid)):
                try:
                    os.rename(p, p.with_name(p.name.split(".claimed-")[0]))
                except FileNotFoundError:
                    continue


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def _read(path: Path) -> list[bytes]:
    with open(path, "rb") as f:
        data = f.read()
    lines = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            _check.decode(line)
        except msgspec.DecodeError:
            # A torn last line from a crash mid-write: nothing more can be recovered from it.
            logger.warning("promptrun spool: skipped an unreadable line in %s", path.name)
            continue
        lines.append(line)
    return lines
