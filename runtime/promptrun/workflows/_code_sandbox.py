"""Run a code node's Python in a child interpreter that holds nothing worth stealing.

What the child gets, and what it does not:

- ``sys.executable -I`` (no ``PYTHON*`` variables, no user site, no script folder on the path)
  with an **empty environment**: no provider keys, no PromptLayer key, no secrets.
- A fresh temporary working folder, removed afterwards; files it writes are capped in size.
- An audit hook, installed before the user's code runs, that refuses: opening files outside
  the working folder (reads of the interpreter's own library, which imports need, excepted;
  directories there cannot be opened), listing folders elsewhere, changing the working folder,
  links, starting processes (``subprocess``, ``os.system``, the ``exec``/``spawn``/``fork``
  family), sockets, ``ctypes``, signals to other processes, and the garbage collector's
  object walks.
- Resource limits (CPU seconds, address space, open files, file size) and a wall-clock time
  limit after which the process is killed; its answer is read up to ``max_output`` bytes.

This is defence in depth for code you wrote or reviewed, not a boundary against a determined
attacker with arbitrary Python: run ``promptrun serve`` as a user that owns no secrets if
untrusted people can publish workflows.

The code is the body of a function whose parameters are the node's inputs; its ``return`` value
(JSON) is the node's value. It is compiled here, so a syntax error is found at publish time,
and the child runs exactly the code object that was checked.
"""

from __future__ import annotations

import ast
import base64
import marshal
import os
import sys
import sysconfig
import tempfile
from types import CodeType
from typing import Any

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, Process
from anyio.lowlevel import RunVar

from promptrun.workflows._bootstrap import SOURCE
from promptrun.workflows.nodes._base import NodeError

__all__ = ["MAX_OUTPUT", "compile_node_code", "run_code"]

MAX_OUTPUT = 1024 * 1024
MAX_MEMORY = 1024 * 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
_STDERR_KEEP = 4000
# Child interpreters at once per event loop: a wide workflow queues instead of forking dozens.
MAX_CONCURRENT = 2 * (os.cpu_count() or 2)
_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("promptrun_code_nodes")
_FILENAME = "<code node>"


def compile_node_code(source: str, parameters: list[str]) -> CodeType:
    """Compile ``source`` as the body of ``def __node__(<parameters>)``; raises SyntaxError."""
    tree = ast.parse(source, filename=_FILENAME, mode="exec")
    args = ast.arguments(
        posonlyargs=[],
        args=[],
        vararg=None,
        kwonlyargs=[ast.arg(arg=name) for name in parameters],
        kw_defaults=[None for _ in parameters],
        kwarg=None,
        defaults=[],
    )
    function = ast.FunctionDef(
        name="__node__",
        args=args,
        body=tree.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    return compile(module, _FILENAME, "exec")


def _readable() -> list[str]:
    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return sorted(found)


_READABLE = _readable()


async def _read_capped(stream: ByteReceiveStream, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


async def _kill(process: Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.wait()


async def run_code(
    source: str,
    inputs: dict[str, Any],
    *,
    timeout: float,
    max_output: int = MAX_OUTPUT,
    max_memory: int = MAX_MEMORY,
) -> Any:
    """Run ``source`` with ``inputs`` in a sandboxed child; its return value, or NodeError."""
    try:
        code = compile_node_code(source, list(inputs))
    except SyntaxError as exc:
        raise NodeError(
            f"the code does not compile: {exc.msg} (line {exc.lineno})", str(exc)
        ) from None
    try:
        job = msgspec.json.encode(
            {
                "code": base64.b64encode(marshal.dumps(code)).decode(),
                "inputs": inputs,
                "timeout": timeout,
                "max_memory": max_memory,
                "max_file_bytes": MAX_FILE_BYTES,
                "readable": _READABLE,
            }
        )
    except (TypeError, msgspec.EncodeError) as exc:
        raise NodeError(f"the code node's inputs are not JSON: {exc}", str(exc)) from None
    if sys.platform == "win32":  # pragma: no cover - resource limits and audit paths are POSIX
        raise NodeError("code nodes need a POSIX system", None)
    try:
        limiter = _LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(MAX_CONCURRENT)
        _LIMITER.set(limiter)
    async with limiter:
        return _result(await _run_child(job, timeout, max_output), max_output)


async def _run_child(
    job: bytes, timeout: float, max_output: int
) -> tuple[bytes, bytes, bool, int | None]:
    with tempfile.TemporaryDirectory(prefix="promptrun-code-") as workdir:
        process = await anyio.open_process(
            [sys.executable, "-I", "-X", "utf8", "-c", SOURCE],
            cwd=workdir,
            env={},
            start_new_session=True,
        )
        try:
            out, err, too_big = await _exchange(process, job, timeout, max_output)
        finally:
            await _kill(process)
    return out, err, too_big, process.returncode


def _result(child: tuple[bytes, bytes, bool, int | None], max_output: int) -> Any:
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


async def _exchange(
    process: Process, job: bytes, timeout: float, max_output: int
) -> tuple[bytes, bytes, bool]:
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

    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                tg.start_soon(feed)
                tg.start_soon(drain, "out", stdout, max_output)
                tg.start_soon(drain, "err", stderr, 64 * 1024)
            await process.wait()
    except TimeoutError:
        raise NodeError(f"the code did not finish within its {timeout:g} s limit", None) from None
    out, too_big = result.get("out", (b"", False))
    err, _ = result.get("err", (b"", False))
    return out, err, too_big
