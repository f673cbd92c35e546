"""Run a code node's Python behind the kernel's boundary, in fair shares of a few slots.

:class:`CodeSandbox` is what a host (the server, or a client in local execution) runs code
nodes with. Each node gets a fresh interpreter in a bubblewrap sandbox
(:mod:`promptrun.workflows._bwrap`: namespaces, no network, no host files, a size-capped
``/tmp``, a seccomp filter, rlimits) that holds nothing worth stealing; its inputs go in on
stdin and its JSON answer comes back on stdout, read up to ``output_bytes``.

Where the sandbox cannot be made (no ``bwrap``, user namespaces disabled, not Linux) code
nodes are **refused** with a message naming the fix, unless the host chose to run them
unsandboxed (``promptrun serve --unsafe-code-nodes``; ``run_workflow(...,
allow_unsandboxed_code=True)``): then the interpreter is a plain child process with an empty
environment, a temporary folder, rlimits and the audit hook only, which is no boundary against
someone who means harm.

Fair share: a node holds one of ``slots`` while it runs, and one owner (a workspace) at most
``owner_slots`` of them. The wait for a slot counts against the node's own timeout, and a
node's timeout is capped at ``limits.max_timeout``.

The code is the body of a function whose parameters are the node's inputs; its ``return`` value
(JSON) is the node's value. It is compiled here, so a syntax error is found at publish time,
and the interpreter runs exactly the code object that was checked.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import msgspec
from anyio.lowlevel import RunVar

from promptrun.workflows._bwrap import BWRAP_ENV, PythonImage, find_bwrap, python_image
from promptrun.workflows._code_process import (
    decode_answer,
    run_sandboxed,
    run_unsandboxed,
    scratch_folder,
)
from promptrun.workflows._compile import compile_node_code
from promptrun.workflows._seccomp import seccomp_filter
from promptrun.workflows._slots import SlotPool
from promptrun.workflows.nodes._base import NodeError

__all__ = [
    "CodeLimits",
    "CodeNodeSettings",
    "CodeSandbox",
    "SandboxStatus",
    "default_slots",
    "local_sandbox",
]

MiB = 1024 * 1024
_LOCAL: RunVar[dict[str | None, CodeSandbox]] = RunVar("promptrun_local_code_sandboxes")
INSTALL_HINT = (
    "install bubblewrap (`apt-get install bubblewrap`, `dnf install bubblewrap`; "
    "`make deps` in a checkout) and allow unprivileged user namespaces "
    "(`sysctl -w kernel.unprivileged_userns_clone=1` on Debian, "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu), or point "
    "PROMPTRUN_BWRAP at a working bwrap"
)


def default_slots() -> int:
    """Code nodes at once by default: two per CPU (they mostly wait on their own process)."""
    return 2 * (os.cpu_count() or 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeLimits:
    """What one code node may use. ``max_timeout`` caps the timeout a definition asks for."""

    memory_bytes: int = 1024 * MiB
    disk_bytes: int = 64 * MiB
    file_bytes: int = 16 * MiB
    open_files: int = 64
    output_bytes: int = 1 * MiB
    max_timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeNodeSettings:
    """How a server runs code nodes (``promptrun serve``'s code-node options).

    ``bwrap``: the bwrap binary (None: ``$PROMPTRUN_BWRAP``, else ``bwrap`` on the PATH).
    ``unsafe``: run them without the sandbox. ``slots``: at once (None: two per CPU);
    ``workspace_slots``: at once for one workspace (None: half of them). ``max_timeout``: the
    longest timeout a node may ask for. ``audit_hook=False`` leaves out the in-process audit
    hook (the red-team tests show the kernel's boundary holding alone; no flag sets it).
    """

    bwrap: str | None = None
    unsafe: bool = False
    slots: int | None = None
    workspace_slots: int | None = None
    max_timeout: float = 60.0
    audit_hook: bool = True

    def sandbox(self) -> CodeSandbox:
        total = self.slots or default_slots()
        return CodeSandbox(
            bwrap=self.bwrap,
            unsafe=self.unsafe,
            limits=CodeLimits(max_timeout=self.max_timeout),
            slots=total,
            owner_slots=self.workspace_slots or max(1, total // 2),
            audit_hook=self.audit_hook,
        )


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    """How code nodes run here: ``bwrap`` (sandboxed), ``unsafe`` (not), or ``refused``."""

    mode: Literal["bwrap", "unsafe", "refused"]
    detail: str

    @property
    def sandboxed(self) -> bool:
        return self.mode == "bwrap"


def local_sandbox() -> CodeSandbox:
    """The sandbox a client's local execution uses (one per event loop, ``$PROMPTRUN_BWRAP``)."""
    try:
        sandboxes = _LOCAL.get()
    except LookupError:
        sandboxes = {}
        _LOCAL.set(sandboxes)
    bwrap = os.environ.get(BWRAP_ENV)
    sandbox = sandboxes.get(bwrap)
    if sandbox is None:
        sandbox = sandboxes[bwrap] = CodeSandbox(
            bwrap=bwrap,
            fallback_hint="pass allow_unsandboxed_code=True to run_workflow() to run them "
            "without the kernel boundary (only for code you trust)",
        )
    return sandbox


class CodeSandbox:
    """Runs code nodes: sandboxed with bwrap, refused, or (``unsafe``) a plain child process.

    ``bwrap`` is the path of the bwrap binary (default ``$PROMPTRUN_BWRAP``, else ``bwrap`` on
    the PATH). ``audit_hook=False`` leaves out the in-process audit hook, leaving the kernel's
    boundary alone (the red-team tests run both ways). ``fallback_hint`` ends the refusal
    message: how this host runs code nodes without the boundary.
    """

    def __init__(
        self,
        *,
        bwrap: str | None = None,
        unsafe: bool = False,
        limits: CodeLimits | None = None,
        slots: int | None = None,
        owner_slots: int | None = None,
        audit_hook: bool = True,
        fallback_hint: str = "start the server with --unsafe-code-nodes to run them "
        "without the kernel boundary",
    ) -> None:
        self.bwrap = bwrap
        self.unsafe = unsafe
        self.limits = limits or CodeLimits()
        total = slots or default_slots()
        self.slots = SlotPool(total, owner_slots)
        self.audit_hook = audit_hook
        self.fallback_hint = fallback_hint
        self._status: SandboxStatus | None = None
        self._image: PythonImage | None = None
        self._checking: anyio.Lock | None = None
        self._scratch: str | None = None

    # -- what this machine can do ------------------------------------------------------
    async def status(self) -> SandboxStatus:
        """How code nodes run here; the first call tries the sandbox once (about 50 ms)."""
        if self._status is not None:
            return self._status
        if self._checking is None:
            self._checking = anyio.Lock()
        async with self._checking:
            if self._status is None:
                self._status = await self._probe()
        return self._status

    async def _probe(self) -> SandboxStatus:
        self._image = await anyio.to_thread.run_sync(python_image)
        if self.unsafe:
            await anyio.to_thread.run_sync(self._scratch_folder)  # sweeps dead servers' folders
            return SandboxStatus(
                "unsafe", "code nodes run WITHOUT the kernel boundary (--unsafe-code-nodes)"
            )
        if not sys.platform.startswith("linux"):
            return SandboxStatus("refused", f"bubblewrap needs Linux, and this is {sys.platform}")
        bwrap = find_bwrap(self.bwrap)
        if bwrap is None:
            named = self.bwrap or os.environ.get(BWRAP_ENV)
            why = (
                f"{named!r} is not an executable file"
                if named
                else "bubblewrap (bwrap) is not installed"
            )
            return SandboxStatus("refused", why)
        self.bwrap = bwrap
        try:
            with anyio.fail_after(30):
                answer = await self._run_once("return 6 * 7", {}, 30.0, sandboxed=True)
        except NodeError as exc:
            return SandboxStatus("refused", f"{bwrap} could not start a sandbox: {exc.message}")
        except TimeoutError:
            return SandboxStatus("refused", f"{bwrap} did not start a sandbox within 30 s")
        if answer != 42:
            return SandboxStatus("refused", f"{bwrap}'s sandbox answered {answer!r}, not 42")
        seccomp = "a seccomp filter" if seccomp_filter() else "no seccomp filter (architecture)"
        return SandboxStatus("bwrap", f"sandboxed by bubblewrap ({bwrap}), with {seccomp}")

    def refusal(self, status: SandboxStatus) -> str:
        """What a refused code node says: why, and how to fix it."""
        return (
            f"code nodes cannot run here: this machine cannot create their sandbox "
            f"({status.detail}). To fix it, {INSTALL_HINT}; or {self.fallback_hint}"
        )

    # -- running a node ----------------------------------------------------------------
    async def run(
        self,
        source: str,
        inputs: dict[str, Any],
        *,
        timeout: float,
        owner: Hashable = None,
        allow_unsandboxed: bool = False,
    ) -> Any:
        """Run ``source`` with ``inputs``; its return value, or NodeError saying what failed."""
        status = await self.status()
        if status.mode == "refused" and not allow_unsandboxed:
            raise NodeError(self.refusal(status), None)
        cap = self.limits.max_timeout
        limit = timeout if cap is None else min(timeout, cap)
        started = time.monotonic()
        running = False
        try:
            with anyio.fail_after(limit):
                async with self.slots.slot(owner):
                    running = True
                    left = limit - (time.monotonic() - started)
                    return await self._run_once(source, inputs, left, sandboxed=status.sandboxed)
        except TimeoutError:
            if not running:
                raise NodeError(self._no_slot_message(limit, owner), None) from None
            text = f"the code did not finish within its {limit:g} s limit"
            if limit < timeout:
                text += (
                    f" (it asks for {timeout:g} s; this host allows at most {limit:g} s: "
                    "--code-node-max-timeout)"
                )
            raise NodeError(text, None) from None

    def _no_slot_message(self, limit: float, owner: Hashable) -> str:
        pool = self.slots
        return (
            f"the code waited its whole {limit:g} s limit for a free code-node slot and did not "
            f"run: {pool.in_use} of {pool.total} are busy, {pool.held_by(owner)} of them this "
            f"workspace's (at most {pool.per_owner} each); the wait counts against the node's "
            "timeout (the server's --code-node-slots and --code-node-workspace-slots set these)"
        )

    async def _run_once(
        self, source: str, inputs: dict[str, Any], timeout: float, *, sandboxed: bool
    ) -> Any:
        try:
            code = compile_node_code(source, list(inputs))
        except SyntaxError as exc:
            raise NodeError(
                f"the code does not compile: {exc.msg} (line {exc.lineno})", str(exc)
            ) from None
        image = self._image
        assert image is not None
        limits = self.limits
        try:
            # JSON in, plain JSON types out: the interpreter gets exactly what JSON can say.
            values = msgspec.json.decode(msgspec.json.encode(inputs))
        except (TypeError, msgspec.EncodeError) as exc:
            raise NodeError(f"the code node's inputs are not JSON: {exc}", str(exc)) from None
        job: dict[str, Any] = {
            "code": code,
            "inputs": values,
            "timeout": timeout,
            "max_memory": limits.memory_bytes,
            "max_file_bytes": min(limits.file_bytes, limits.disk_bytes),
            "max_open_files": limits.open_files,
            "readable": list(image.folders),
            "audit_hook": self.audit_hook,
            "parent": None if sandboxed else os.getpid(),
        }
        try:
            # marshal, not JSON: the interpreter starts without importing json (about 10 ms)
            payload = marshal.dumps(job)
        except ValueError as exc:  # nested deeper than marshal goes
            raise NodeError(f"the code node's inputs cannot be sent: {exc}", str(exc)) from None
        if sandboxed:
            assert self.bwrap is not None
            child = await run_sandboxed(
                self.bwrap, image, payload, limits.disk_bytes, limits.output_bytes
            )
        else:
            child = await run_unsandboxed(
                image, payload, self._scratch_folder(), limits.output_bytes
            )
        return decode_answer(child, limits.output_bytes)

    def _scratch_folder(self) -> str:
        if self._scratch is None:
            self._scratch = scratch_folder()
        return self._scratch
