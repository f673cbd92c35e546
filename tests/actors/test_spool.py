"""The spool as a journal: ownership by lock, acknowledged offsets, damage, other processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from promptrun.actors._spool import Spool, kin_waiting
from promptrun.wire.ingest import LogRecord


def record(i: int) -> bytes:
    return msgspec.json.encode(LogRecord(client_request_id=f"req_{i}", body={"n": i}))


def take_all(spool: Spool) -> list[bytes]:
    out: list[bytes] = []
    for seg in list(spool.segments):
        taken = spool.take(seg, 1_000_000, 1 << 30)
        out += taken.records
        if taken.records:
            spool.settle(seg, taken.ends[-1], taken.base_done + taken.lines[-1])
    return out


def test_records_come_back_in_order_and_settled_ones_never_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(10):
        spool.append(record(i))
    [seg] = spool.segments
    first = spool.take(seg, 4, 1 << 20)
    assert first.records == [record(i) for i in range(4)]
    spool.settle(seg, first.ends[-1], first.base_done + first.lines[-1])
    spool.release()
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.adopt_orphans() == 6
    assert take_all(again) == [record(i) for i in range(4, 10)]
    again.release()
    assert list(tmp_path.iterdir()) == []  # everything settled: nothing left behind


def test_a_taken_batch_given_back_is_taken_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(record(i))
    [seg] = spool.segments
    assert len(spool.take(seg, 10, 1 << 20).records) == 3
    assert spool.take(seg, 10, 1 << 20).records == []
    spool.rewind(seg)  # the shipment failed
    assert spool.take(seg, 10, 1 << 20).records == [record(i) for i in range(3)]


def test_a_segment_whose_writer_lives_is_never_adopted_and_is_once_it_dies(
    tmp_path: Path,
) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from promptrun.actors._spool import Spool
        spool = Spool(Path({str(tmp_path)!r}), max_bytes=1 << 20)
        for i in range(5):
            spool.append(b'{{"type":"log","client_request_id":"req_%d","body":{{}}}}' % i)
        print("ready", flush=True)
        time.sleep(120)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        other = Spool(tmp_path, max_bytes=1 << 20)
        assert other.adopt_orphans() == 0  # a live process owns it
        assert other.segments == []
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        assert other.adopt_orphans() == 5
        assert len(take_all(other)) == 5
    finally:
        writer.kill()
        writer.wait()
        if writer.stdout:
            writer.stdout.close()


def test_a_forked_child_does_not_keep_its_parents_segments_locked(tmp_path: Path) -> None:
    # The parent writes, forks a long-lived child, and is killed: its records must not wait
    # for the child to end.
    code = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from promptrun.actors._spool import Spool
        spool = Spool(Path({str(tmp_path)!r}), max_bytes=1 << 20)
        spool.append(b'{{"type":"log","client_request_id":"req_1","body":{{}}}}')
        if os.fork() == 0:
            print("child", flush=True)  # after the fork hooks ran
            time.sleep(120)
            os._exit(0)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "child"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        other = Spool(tmp_path, max_bytes=1 << 20)
        assert other.adopt_orphans() == 1
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the child too
        parent.wait()
        if parent.stdout:
            parent.stdout.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kin_only_adoption_takes_what_ended_forked_children_left_and_nothing_else(
    tmp_path: Path,
) -> None:
    # A stranger (another program sharing the folder) that ended, a forked child that ended
    # with os._exit, and a forked child still running.
    stranger = textwrap.dedent(
        f"""
        from pathlib import Path
        from promptrun.actors._spool import Spool
        Spool(Path({str(tmp_path)!r}), max_bytes=1 << 20).append({record(0)!r})
        """
    )
    subprocess.run([sys.executable, "-c", stranger], check=True, timeout=60)
    ended = os.fork()
    if ended == 0:
        Spool(tmp_path, max_bytes=1 << 20).append(record(1))
        os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(ended, 0)[1]) == 0
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    running = os.fork()
    if running == 0:
        Spool(tmp_path, max_bytes=1 << 20).append(record(2))
        os.write(ready_w, b"1")
        os.read(go_r, 1)
        os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
        assert kin_waiting(tmp_path)
        parent = Spool(tmp_path, max_bytes=1 << 20)
        assert parent.adopt_orphans(kin_only=True) == 1
        assert [s.kin for s in parent.segments] == [True]
        assert take_all(parent) == [record(1)]
        assert parent.adopt_orphans() == 1  # the stranger's, for a flush: not kin
        assert [s.kin for s in parent.segments] == [False]
    finally:
        os.write(go_w, b"1")
        os.waitpid(running, 0)
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)


def test_a_torn_last_record_and_damaged_lines_are_skipped_and_counted_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(record(1))
    spool.append(b"\0" * 40)  # what a power cut can leave in a file's last blocks
    spool.append(record(2))
    [seg] = spool.segments
    spool.release()
    with seg.path.open("ab") as f:
        f.write(record(3)[:20])  # a write cut short by a crash
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.adopt_orphans() == 3  # whole lines; the torn tail is not one
    [seg] = again.segments
    taken = again.take(seg, 10, 1 << 20)
    assert taken.records == [record(1), record(2)]
    assert again.dropped == 1
    again.rewind(seg)  # read again after a failed shipment: not counted twice
    assert again.take(seg, 10, 1 << 20).records == [record(1), record(2)]
    assert again.dropped == 1
    assert sum("damaged record" in r.getMessage() for r in caplog.records) == 1


def test_a_full_disk_part_way_through_a_write_leaves_no_torn_record(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(record(1))
    [seg] = spool.segments
    good = seg.fd
    seg.fd = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    try:
        with pytest.raises(OSError):
            spool.append(record(2))
    finally:
        os.close(seg.fd)
        seg.fd = good
    spool.append(record(3))
    assert take_all(spool) == [record(1), record(3)]


def test_past_its_bound_the_spool_drops_its_oldest_segments_and_counts_them(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=4096)
    for i in range(200):
        spool.append(record(i))
    kept = take_all(spool)
    assert spool.dropped > 0
    assert len(kept) + spool.dropped == 200
    assert kept == [record(i) for i in range(200 - len(kept), 200)]  # the newest are kept


def test_a_segment_file_being_created_is_left_alone_and_an_abandoned_one_is_removed(
    tmp_path: Path,
) -> None:
    # A new segment is unlocked for a moment before its creator locks it: a scan by another
    # thread or process in that moment must not take it away.
    fresh = tmp_path / "00000000000000000002-1-abcd.tmp"
    fresh.write_bytes(b"")
    abandoned = tmp_path / "00000000000000000001-1-dcba.tmp"
    abandoned.write_bytes(b"")
    old = abandoned.stat().st_mtime - 3600
    os.utime(abandoned, (old, old))
    Spool(tmp_path, max_bytes=1 << 20).adopt_orphans()
    assert fresh.exists()
    assert not abandoned.exists()


def test_records_in_flight_when_the_bound_drops_their_segment_are_counted_once(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=4096)
    spool.append(record(0))
    spool.append(record(1))
    first = spool.segments[0]
    batch = spool.take(first, 10, 1 << 20)  # both are being shipped...
    for i in range(2, 200):  # ...while a writer thread fills the spool past its bound
        spool.append(record(i))
    assert first.gone
    spool.settle(first, batch.ends[0], batch.base_done + batch.lines[0])  # the first made it
    spool.rewind(first)  # the second did not: it is lost with its segment
    kept = take_all(spool)
    assert len(kept) + spool.dropped + 1 == 200  # every record shipped, kept or counted
    assert record(1) not in kept


def test_a_long_lived_writer_whose_records_ship_keeps_only_its_current_segment(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=4096)  # segments rotate every 1 KB
    for i in range(300):
        spool.append(record(i))
        take_all(spool)  # shipped as fast as they come
    spool.append(record(300))
    assert len(list(tmp_path.glob("*.seg"))) == 1
    assert spool.dropped == 0
