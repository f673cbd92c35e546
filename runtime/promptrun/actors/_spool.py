"""The spool: a write-ahead journal of log records, one folder per server and API key.

Every record is appended here (one ``pwrite``, no ``fsync``: the kernel keeps it across a
kill of the process) before ``run()`` or ``log_request()`` returns. The shipper reads records
back in order, ships them, and moves the segment's acknowledged offset past them; a segment
is deleted once everything in it is acknowledged.

A segment is ``<time_ns>-<pid>-<family>-<random>.seg``: a header line holding the
acknowledged byte offset, then one encoded record a line, exactly as it goes on the wire. The
family (:data:`promptrun._procs.FAMILY`) is shared by a process and the children it forks, so
a parent can tell, by name alone, the segments its children left when they ended without
shipping (multiprocessing's workers are ended with SIGTERM). A segment belongs to whoever
holds an exclusive ``flock`` on it: the process writing it, or one that adopted it after its
owner died (the kernel drops a dead process's locks, kill -9 included). Nobody else reads,
ships or deletes it, so processes sharing the folder never take each other's records. A new
segment is locked before it gets its ``.seg`` name, so it is never seen unowned.

Writers may be any thread (the sync client appends from its callers' threads); the shipper
side (``take``, ``settle``, ``adopt_orphans``, ``release``) is used by one task at a time.
Names from earlier versions (``<time_ns>-<pid>-<random>.seg``) are read as any other family's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import msgspec

from promptrun._procs import FAMILY
from promptrun.wire.ingest import Record

__all__ = ["LATE_FOLDERS", "Segment", "Spool", "Taken", "kin_waiting"]

logger = logging.getLogger("promptlayer")

_MAGIC = b"promptrun-spool/1 acked="
_HEADER = _MAGIC + b"%012d\n"
HEADER_LEN = len(_HEADER % 0)
_SUFFIX = ".seg"
_STALE_TMP_S = 60.0
_check = msgspec.json.Decoder(Record)
_journals: weakref.WeakSet[Spool] = weakref.WeakSet()
# Folders that got records after their spool was released: the exit hook ships them.
LATE_FOLDERS: set[Path] = set()


@dataclass(eq=False, slots=True)
class Segment:
    """One segment file this process holds the lock of."""

    path: Path
    fd: int
    size: int  # end of the last whole record
    acked: int  # everything before this offset is settled (shipped or given up)
    read: int  # the shipper has taken everything before this offset
    count: int  # whole records in the file (past the header)
    done: int  # records before ``acked``
    taken: int  # records before ``read``
    sealed: bool = False  # no more appends
    backlog: bool = False  # waited through an outage, or adopted: replayed, oldest first
    adopted: bool = False  # written by another process or an earlier runtime
    held: bool = False  # a track call at its head waits for the record it names
    gone: bool = False  # deleted (settled, or dropped over the bound), or released
    released: bool = False  # let go of, with what it holds, for the next owner
    checked_to: int = 0  # adopted: lines before this offset were checked to decode
    kin: bool = False  # adopted, and written by a child this process forked (or theirs)

    @property
    def unread(self) -> int:
        return self.count - self.taken

    @property
    def pending(self) -> int:
        return self.count - self.done


@dataclass(slots=True)
class Taken:
    """Records handed to the shipper: ``ends[i]`` is where record i ends in the file, and
    ``lines[i]`` how many lines (records, and damaged lines skipped) lead up to it."""

    records: list[bytes]
    ends: list[int]
    lines: list[int]
    base_done: int = 0  # the segment's settled records when these were taken


class Spool:
    """Append encoded records durably; hand them back in order until they are settled."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        # Segments rotate at a quarter of the bound (at most 4 MB), so dropping whole old
        # segments keeps what this process spools within 1.25 x max_bytes.
        self.segment_limit = max(1024, min(max_bytes // 4, 4 * 1024 * 1024))
        self.segments: list[Segment] = []  # oldest first
        self.live: Segment | None = None
        self.dropped = 0  # records lost to the bound or to damage; the shipper reports them
        self.appended = 0  # records taken by append()
        self.released = False
        self._lock = threading.Lock()
        self._adopting = threading.Lock()
        self._dropped_fds: list[int] = []  # of segments dropped by a writer, to close
        self._unbound_checked = False
        _journals.add(self)

    # -- writing (any thread) ----------------------------------------------------------
    def append(self, data: bytes) -> None:
        """Write one record after the others (one system call); raises OSError if it cannot."""
        with self._lock:
            seg = self.live
            if seg is None or seg.size >= self.segment_limit:
                if self.released:
                    self._append_orphan([data, b"\n"])
                    self.appended += 1
                    return
                seg = self._rotate()
            self._write(seg, (data + b"\n",))
            seg.count += 1
            self.appended += 1

    def append_many(self, records: list[bytes]) -> None:
        """Write records in one system call per segment; raises OSError if it cannot."""
        i = 0
        with self._lock:
            if self.released:
                self._append_orphan([p for r in records for p in (r, b"\n")])
                return
            while i < len(records):
                seg = self.live
                if seg is None or seg.size >= self.segment_limit:
                    seg = self._rotate()
                room = self.segment_limit - seg.size
                parts: list[bytes] = []
                n = 0
                while i < len(records) and (not parts or room > 0):
                    parts += (records[i], b"\n")
                    room -= len(records[i]) + 1
                    i += 1
                    n += 1
                self._write(seg, parts)
                seg.count += n

    def _write(self, seg: Segment, parts: tuple[bytes, ...] | list[bytes]) -> None:
        want = sum(len(p) for p in parts)
        try:
            if len(parts) == 1:
                written = os.pwrite(seg.fd, parts[0], seg.size)
            else:
                written = os.pwritev(seg.fd, parts, seg.size)
        except OSError:
            _truncate(seg)
            raise
        if written != want:  # a full disk part-way: take the torn piece back
            _truncate(seg)
            raise OSError(errno.ENOSPC, "short write to the spool (is the disk full?)")
        seg.size += written

    def _append_orphan(self, parts: list[bytes]) -> None:
        # After release (records that came after the client closed): a segment of their own,
        # let go of at once, for the next client or the exit hook to adopt.
        LATE_FOLDERS.add(self.folder)
        seg = self._create()
        try:
            self._write(seg, parts)
        finally:
            _close(seg.fd)

    def _rotate(self) -> Segment:
        old = self.live
        if old is not None:
            old.sealed = True
            if old.acked >= old.size:  # all shipped already: no settle will come to delete it
                self._forget(old, unlink=True, close=False)
        self.live = None
        seg = self._create()
        self.live = seg
        self.segments = [*self.segments, seg]
        if old is not None:
            self._enforce_bound()
        return seg

    def _create(self) -> Segment:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{FAMILY}-{secrets.token_hex(4)}"
        tmp = self.folder / f"{name}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.pwrite(fd, _HEADER % HEADER_LEN, 0)
            path = self.folder / f"{name}{_SUFFIX}"
            os.rename(tmp, path)  # locked before anyone can see it
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return Segment(path, fd, HEADER_LEN, HEADER_LEN, HEADER_LEN, 0, 0, 0)

    def _enforce_bound(self) -> None:
        """Past ``max_bytes`` unsettled, the oldest segments go (counted, warned)."""
        total = sum(s.size - s.acked for s in self.segments)
        for seg in list(self.segments):
            if total <= self.max_bytes:
                return
            if seg is self.live:
                continue
            total -= seg.size - seg.acked
            # Records already taken are the shipper's to settle; the rest are lost.
            lost = seg.count - seg.taken
            self.dropped += lost
            # This may be a caller's thread: the shipper may be reading this file right now,
            # so its descriptor is closed on the shipper's side (take, release).
            self._forget(seg, unlink=True, close=False)
            logger.warning(
                "promptrun spool %s is over its limit of %d bytes: dropped the %d oldest records",
                self.folder,
                self.max_bytes,
                lost,
            )

    # -- the shipper's side (one task at a time) ----------------------------------------
    def take(self, seg: Segment, max_records: int, max_bytes: int) -> Taken:
        """Up to ``max_records`` whole records after ``seg.read``, in order.

        Records in adopted segments that do not decode (a torn write, power-loss damage) are
        skipped, counted in ``dropped``, and settled with the record before them.
        """
        self._close_dropped()
        taken = Taken([], [], [])
        start, end = seg.read, seg.size
        if start >= end or seg.gone:
            return taken
        data = os.pread(seg.fd, min(end - start, max_bytes), start)
        cut = data.rfind(b"\n")
        while cut < 0 and len(data) < end - start:  # one record bigger than max_bytes
            data += os.pread(seg.fd, min(end - start - len(data), 1 << 20), start + len(data))
            cut = data.find(b"\n")
        pos = start
        lines = 0
        for line in data[:cut].split(b"\n")[:max_records]:
            pos += len(line) + 1
            lines += 1
            if seg.adopted and not _decodes(line):
                if pos > seg.checked_to:  # counted once, however often it is read
                    self.dropped += 1
                    logger.warning("promptrun spool: skipped a damaged record in %s", seg.path)
                    seg.checked_to = pos
                if taken.records:  # settled together with the record before it
                    taken.ends[-1], taken.lines[-1] = pos, lines
                else:  # nothing before it: settled now
                    seg.acked, seg.done, lines = pos, seg.done + 1, 0
                continue
            seg.checked_to = max(seg.checked_to, pos)
            taken.records.append(line)
            taken.ends.append(pos)
            taken.lines.append(lines)
        seg.read = pos
        seg.taken = seg.done + lines
        taken.base_done = seg.done
        if not taken.records and seg.acked > start:
            self.settle(seg, seg.acked, seg.done)  # only damaged lines: record the progress
        return taken

    def settle(self, seg: Segment, end: int, done: int) -> None:
        """The ``done`` records before ``end`` are shipped or given up: note it in the header."""
        seg.acked = end
        seg.done = done
        if seg.gone:
            return
        if seg.sealed and seg.acked >= seg.size:
            with self._lock:
                self._forget(seg, unlink=True)
            return
        try:
            os.pwrite(seg.fd, b"%012d" % end, len(_MAGIC))
        except OSError as exc:  # the records are shipped; a replay would only repeat them
            logger.debug("promptrun spool: could not record progress in %s: %s", seg.path, exc)

    def rewind(self, seg: Segment) -> None:
        """Give back what was taken and not settled: it is taken again next time."""
        if seg.gone and seg.taken > seg.done and not seg.released:
            self.dropped += seg.taken - seg.done  # dropped over the bound while in flight
        seg.read, seg.taken = seg.acked, seg.done

    def seal_all(self) -> None:
        """Everything written so far becomes backlog; new records start a fresh segment."""
        with self._lock:
            for seg in self.segments:
                seg.sealed = seg.backlog = True
            self.live = None
            for seg in [s for s in self.segments if s.acked >= s.size]:
                self._forget(seg, unlink=True)

    def pending(self, *, adopted: bool = True, kin: bool = False) -> int:
        """Records not settled: this process's own, and of those it adopted all if
        ``adopted``, else with ``kin`` those its forked children wrote."""
        return sum(s.pending for s in self.segments if adopted or not s.adopted or (kin and s.kin))

    def adopt_orphans(self, *, own_pid_only: bool = False, kin_only: bool = False) -> int:
        """Take over segments whose owner is gone; returns how many records they hold.

        With ``own_pid_only``, only those this process wrote; with ``kin_only``, only those
        its forked children wrote. Both pick by name: other segments are not even opened."""
        if self.released:
            return 0
        if not (own_pid_only or kin_only) and not self._unbound_checked:
            self._unbound_checked = True
            _warn_about_unbound(self.folder)
        with self._adopting:
            try:
                names = sorted(os.listdir(self.folder))
            except OSError:  # no folder yet, or it cannot be read: nothing to adopt
                return 0
            mine = {s.path.name for s in self.segments}
            pid = f"-{os.getpid()}-"
            found = 0
            for name in names:
                if name.endswith(".tmp"):
                    _remove_stale_tmp(self.folder / name)
                if not name.endswith(_SUFFIX) or name in mine:
                    continue
                if own_pid_only and pid not in name:
                    continue
                if kin_only and not _is_kin(name):
                    continue
                seg = _adopt(self.folder / name)
                if seg is None:
                    continue
                with self._lock:
                    if self._released():
                        _close(seg.fd)
                        return found
                    # A new list, never one changed in place: the shipper reads without a lock.
                    self.segments = sorted([*self.segments, seg], key=_by_name)
                found += seg.pending
                logger.debug("replaying %d spooled log records from %s", seg.pending, name)
            return found

    def release(self) -> None:
        """Let go of every segment: settled ones are deleted, the rest wait for the next owner."""
        with self._lock:
            self.released = True
            self.live = None
            for seg in list(self.segments):
                seg.released = True
                self._forget(seg, unlink=seg.acked >= seg.size)
        self._close_dropped()

    def _forget(self, seg: Segment, *, unlink: bool, close: bool = True) -> None:
        # Under self._lock. Unlink while still holding the lock, so nobody adopts it between.
        if seg.gone:
            return
        seg.gone = True
        if unlink:
            seg.path.unlink(missing_ok=True)
        if close:
            _close(seg.fd)
        else:
            self._dropped_fds.append(seg.fd)
        self.segments = [s for s in self.segments if s is not seg]
        if seg is self.live:
            self.live = None

    def _close_dropped(self) -> None:
        if self._dropped_fds:
            with self._lock:
                fds, self._dropped_fds = self._dropped_fds, []
            for fd in fds:
                _close(fd)

    def _released(self) -> bool:
        return self.released  # read again: another thread may have released it

    def forget_after_fork(self) -> None:
        # In a forked child: these open files and their locks are the parent's. Closing the
        # child's copies lets the parent's locks end when the parent does.
        for seg in self.segments:
            _close(seg.fd)
            seg.gone = True
        self.segments = []
        self.live = None
        self.released = True
        self._lock = threading.Lock()
        self._adopting = threading.Lock()


def _after_fork_in_child() -> None:
    for journal in list(_journals):
        journal.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _by_name(seg: Segment) -> str:
    return seg.path.name


def _is_kin(name: str) -> bool:
    """A segment of this process's family written by another process of it: a child it
    forked, or theirs (see the module's docstring)."""
    parts = name.split("-")
    return len(parts) == 4 and parts[2] == FAMILY and parts[1] != str(os.getpid())


def kin_waiting(folder: Path) -> bool:
    """Whether ``folder`` holds segments of this process's forked children (names only)."""
    try:
        return any(n.endswith(_SUFFIX) and _is_kin(n) for n in os.listdir(folder))
    except OSError:
        return False


def _adopt(path: Path) -> Segment | None:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        _close(fd)  # a live process owns it
        return None
    try:
        linked = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        linked = False
    if not linked:  # its owner finished it and deleted it after we opened it
        _close(fd)
        return None
    try:
        seg = _scan(path, fd)
    except OSError as exc:
        logger.warning("promptrun spool: could not read %s: %s", path, exc)
        _close(fd)
        return None
    if seg.pending == 0:
        path.unlink(missing_ok=True)
        _close(fd)
        return None
    return seg


def _scan(path: Path, fd: int) -> Segment:
    """An orphan's state: its acknowledged offset, and its whole records after it."""
    header = os.pread(fd, HEADER_LEN, 0)
    acked = HEADER_LEN
    if header.startswith(_MAGIC) and header.endswith(b"\n"):
        # Damaged: replay it all (the server ignores what it already has).
        with contextlib.suppress(ValueError):
            acked = max(HEADER_LEN, int(header[len(_MAGIC) : -1]))
    total = os.fstat(fd).st_size
    acked = min(acked, total)
    count = 0
    end = acked
    pos = acked
    while pos < total:
        chunk = os.pread(fd, min(total - pos, 1 << 20), pos)
        if not chunk:
            break
        count += chunk.count(b"\n")
        last = chunk.rfind(b"\n")
        if last >= 0:
            end = pos + last + 1
        pos += len(chunk)
    if end < total:
        # A last line cut short by a crash mid-write: not a record.
        logger.warning("promptrun spool: skipped a torn last record in %s", path.name)
    return Segment(
        path, fd, end, acked, acked, count, 0, 0, True, True, True, kin=_is_kin(path.name)
    )


def _warn_about_unbound(folder: Path) -> None:
    """Segments right in the parent folder (a ``spool_dir`` as promptrun 0.x used it, shared
    by every server and key) are not this client's to ship: say where they are and what to do.
    """
    root = folder.parent
    try:
        names = [n for n in os.listdir(root) if n.endswith(_SUFFIX)]
    except OSError:
        return
    records = 0
    for name in names:
        try:
            fd = os.open(root / name, os.O_RDONLY)
        except OSError:
            continue
        try:
            records += _scan(root / name, fd).pending
        except OSError:
            pass
        finally:
            _close(fd)
    if records:
        with contextlib.suppress(OSError):  # so that the files can be moved there
            folder.mkdir(parents=True, exist_ok=True)
        logger.warning(
            "promptrun spool: %s holds %d log record(s) in %d segment file(s) written by an "
            "earlier promptrun, which kept the records of every server and API key in one "
            "folder. They are not shipped, since nothing says which server and key they "
            "belong to. Records now wait in a folder per server and key (this client's: %s). "
            "If those records were made for this client's server and API key, move the .seg "
            "files into that folder and they ship; otherwise delete them.",
            root,
            records,
            len(names),
            folder,
        )


def _remove_stale_tmp(path: Path) -> None:
    # A segment whose creator died before naming it: it holds no records. One being created
    # right now is not locked yet for a moment, so only old ones go.
    try:
        if time.time() - path.stat().st_mtime < _STALE_TMP_S:
            return
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        _close(fd)


def _truncate(seg: Segment) -> None:
    try:
        os.ftruncate(seg.fd, seg.size)
    except OSError as exc:  # pragma: no cover - a torn tail is skipped on replay anyway
        logger.debug("promptrun spool: could not truncate %s: %s", seg.path, exc)


def _decodes(line: bytes) -> bool:
    try:
        _check.decode(line)
    except msgspec.DecodeError:
        return False
    return True


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
