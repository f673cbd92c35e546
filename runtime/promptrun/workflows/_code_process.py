"""One code node's interpreter as a process: started, fed its job, read within limits, reaped.

:func:`run_sandboxed` starts it in bubblewrap's sandbox (:mod:`promptrun.workflows._bwrap`,
with the seccomp filter passed on a pipe); :func:`run_unsandboxed` as a plain child in a
folder under this process's :func:`scratch_folder`. Either way the job (marshal) goes in on
stdin, the answer (JSON) is read from stdout up to ``output_bytes`` and stderr up to 64 KiB,
and the process is killed and reaped however the caller's deadline or cancellation ends it.
:func:`decode_answer` turns what came back into the node's value or a ``NodeError``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from typing import Any, TypeAlias

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, Process

from promptrun._procs import pid_alive
from promptrun.workflows._bootstrap import SOURCE
from promptrun.workflows._bwrap import PythonImage, bwrap_command
from promptrun.workflows._seccomp import seccomp_filter
from promptrun.workflows.nodes._base import NodeError

__all__ = ["Child", "decode_answer", "run_sandboxed", "run_unsandboxed", "scratch_folder"]

PROGRAM = ("-I", "-S", "-X", "utf8", "-c", SOURCE)
_STDERR_KEEP = 4000
# stdout, stderr, whether stdout went past its limit, the exit status
Child: TypeAlias = tuple[bytes, bytes, bool, int | None]


async def run_sandboxed(
    bwrap: str, image: PythonImage, payload: bytes, disk_bytes: int, output_bytes: int
) -> Child:
    """Run the interpreter with ``payload`` in a bubblewrap sandbox."""
    program = seccomp_filter()
    read_end: int | None = None
    if program is not None:
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as f:
            f.write(program)  # a few hundred bytes: fits the pipe's buffer
    try:
        argv = bwrap_command(bwrap, image, PROGRAM, disk_bytes=disk_bytes, seccomp_fd=read_end)
        process = await anyio.open_process(
            argv,
            env={},
            start_new_session=True,
            pass_fds=() if read_end is None else (read_end,),
        )
    finally:
        if read_end is not None:
            os.close(read_end)
    try:
        out, err, too_big = await _exchange(process, payload, output_bytes)
    finally:
        await _kill(process)
    return out, err, too_big, process.returncode


async def run_unsandboxed(
    image: PythonImage, payload: bytes, scratch: str, output_bytes: int
) -> Child:
    """Run the interpreter with ``payload`` as a plain child, in a fresh folder under ``scratch``."""
    if sys.platform == "win32":  # pragma: no cover - rlimits, sessions and signals are POSIX
        raise NodeError("code nodes need a POSIX system", None)
    workdir = tempfile.mkdtemp(prefix="node-", dir=scratch)
    try:
        process = await anyio.open_process(
            [image.executable, *PROGRAM], cwd=workdir, env={}, start_new_session=True
        )
        try:
            out, err, too_big = await _exchange(process, payload, output_bytes)
        finally:
            await _kill(process)
            with contextlib.suppress(OSError):  # whatever it started, in its session
                os.killpg(process.pid, signal.SIGKILL)
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, workdir, True)
    return out, err, too_big, process.returncode


def scratch_folder() -> str:
    """This process's folder for unsandboxed nodes; sweeps those of processes now dead."""
    root = os.path.join(tempfile.gettempdir(), f"promptrun-code-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    for name in os.listdir(root):
        if name.isdigit() and not pid_alive(int(name)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    mine = os.path.join(root, str(os.getpid()))
    os.makedirs(mine, mode=0o700, exist_ok=True)
    return mine


async def _kill(process: Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.aclose()  # closes its pipes too, then reaps it


async def _read_capped(stream: ByteReceiveStream, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


async def _exchange(process: Process, job: bytes, output_bytes: int) -> tuple[bytes, bytes, bool]:
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    stdin, stdout, stderr = process.stdin, process.stdout, process.stderr
    result: dict[str, tuple[bytes, bool]] = {}

    async def feed() -> None:
        try:
            await stdin.send(job)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the child died early; its exit status tells the story
        finally:
            await stdin.aclose()

    async def drain(name: str, stream: ByteReceiveStream, limit: int) -> None:
        result[name] = await _read_capped(stream, limit)
        if result[name][1]:
            process.kill()

    # The caller's deadline surrounds this, and _kill ends the process however it ends.
    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        tg.start_soon(drain, "out", stdout, output_bytes)
        tg.start_soon(drain, "err", stderr, 64 * 1024)
    await process.wait()
    out, too_big = result.get("out", (b"", False))
    err, _ = result.get("err", (b"", False))
    return out, err, too_big


def decode_answer(child: Child, max_output: int) -> Any:
    """The value the code returned, or NodeError saying what went wrong (its untrusted JSON)."""
    out, err, too_big, returncode = child
    if too_big:
        raise NodeError(f"the code's output is larger than {max_output} bytes", None)
    if not out:
        tail = err.decode("utf-8", "replace").strip()[-_STDERR_KEEP:]
        raise NodeError(
            f"the code process ended without a result (exit status {returncode})"
            + (f": {tail}" if tail else ""),
            tail or None,
        )
    try:
        envelope = msgspec.json.decode(out)
    except msgspec.DecodeError:
        raise NodeError("the code process wrote something that is not its result", None) from None
    if not isinstance(envelope, dict):
        raise NodeError("the code process wrote something that is not its result", None)
    if envelope.get("ok"):
        return envelope.get("value")
    error = str(envelope.get("error") or "unknown error")
    if envelope.get("stage") == "result":
        raise NodeError(error, error)
    line = envelope.get("line")
    where = f" at line {line}" if isinstance(line, int) else ""
    raise NodeError(f"the code raised{where}: {error}", error)
