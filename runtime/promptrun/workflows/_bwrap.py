"""The kernel's boundary around a code node: the bubblewrap (``bwrap``) command that makes it.

Why bubblewrap rather than nsjail: it is a Debian/Fedora/Arch package (what Flatpak uses),
needs no configuration file or daemon, works for an unprivileged user as for root, and starts
a sandbox in a few milliseconds (measured in ``benchmarks/code_node.py``). nsjail offers
cgroups and more knobs but is not packaged by Debian and would be a build from source.

What the node's interpreter gets:

- new user, PID, network (no interface up: no network at all), IPC, UTS, mount and cgroup
  namespaces; its user is 65534 (nobody) inside, with no capabilities, no environment
  (``--clearenv``), a new session (no terminal to inject into), and it is killed with its
  parent (``--die-with-parent``): when the server dies, so does the sandbox's PID 1, and the
  kernel then kills every process of that PID namespace, detached or not;
- a file system of its own: a read-only empty root; this Python's interpreter, standard
  library (its ``site-packages`` hidden: code nodes import the standard library only) and
  the shared libraries they load, read-only, at their usual paths (not those of the modules
  in :data:`UNAVAILABLE`, which do not import there); ``/etc/ld.so.cache``; a
  minimal read-only ``/dev`` (null, zero, random, urandom, tty); no ``/proc``; and its own
  ``/tmp``, a tmpfs of ``disk_bytes`` (the cap on everything it writes, not only per file),
  which is also its working folder and vanishes with it. Nothing of the host's files, the
  server's database or environment is there to be read;
- the seccomp filter of :mod:`promptrun.workflows._seccomp` (no new processes or threads, no
  sockets, none of the calls exploits like), and the rlimits its bootstrap sets before the
  user's code runs (CPU, address space, processes, file size, open files, no core dumps).

cgroups are not used: a cgroup v2 tree with the memory and pids controllers delegated to the
server is rare (the CI machine has a hybrid v1 hierarchy with no v2 controllers), and the
limits above already bound a node's CPU, memory, disk and process count. What a cgroup would
add is kernel memory accounting (a node's tmpfs inodes and page tables).
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

__all__ = ["BWRAP_ENV", "PythonImage", "bwrap_command", "find_bwrap", "python_image"]

BWRAP_ENV = "PROMPTRUN_BWRAP"
# Extension modules whose libraries a sandbox does without (a display, a terminal, NIS, dbm
# files): each bind mount costs bwrap time, and these would add about thirty of them.
UNAVAILABLE = ("_tkinter", "_curses", "_curses_panel", "readline", "nis", "_dbm", "_gdbm")
SANDBOX_UID = 65534
WORKDIR = "/tmp"


def find_bwrap(path: str | None = None) -> str | None:
    """The bwrap to use: ``path``, else ``$PROMPTRUN_BWRAP``, else ``bwrap`` on the PATH."""
    chosen = path or os.environ.get(BWRAP_ENV) or "bwrap"
    if os.sep in chosen:
        return chosen if os.access(chosen, os.X_OK) and os.path.isfile(chosen) else None
    return shutil.which(chosen)


@dataclass(frozen=True, slots=True)
class PythonImage:
    """What of this Python a sandbox sees: the interpreter, its library, the shared objects."""

    executable: str
    folders: tuple[str, ...]
    hidden: tuple[str, ...]
    libraries: tuple[str, ...]


def _interpreter_of(path: str) -> str | None:
    """The ELF program interpreter (the dynamic loader) named by ``path``'s PT_INTERP."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return None
        is64, order = head[4] == 2, "<" if head[5] == 1 else ">"
        if is64:
            phoff, phentsize, phnum = struct.unpack_from(order + "Q14xHH", head, 32)
        else:
            phoff, phentsize, phnum = struct.unpack_from(order + "I10xHH", head, 28)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            entry = f.read(phentsize)
            if struct.unpack_from(order + "I", entry)[0] != 3:  # PT_INTERP
                continue
            if is64:
                offset, size = struct.unpack_from(order + "Q16xQ", entry, 8)
            else:
                offset, size = struct.unpack_from(order + "I8xI", entry, 4)
            f.seek(offset)
            return f.read(size).rstrip(b"\0").decode()
    return None


def _loaded_by(loader: str, path: str) -> set[str]:
    # What ``ldd`` prints, asked of the loader directly: ldd is a shell script, 10x slower.
    try:
        done = subprocess.run(
            [loader, path],
            env={"LD_TRACE_LOADED_OBJECTS": "1"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    found = set()
    for line in done.stdout.splitlines():
        target = line.split("=>", 1)[1] if "=>" in line else line
        target = target.split("(", 1)[0].strip()
        if target.startswith("/"):
            found.add(target)
    return found


@functools.cache
def python_image() -> PythonImage:
    """This Python as a sandbox sees it (computed once: it runs the loader ~80 times)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    executable = os.path.realpath(base if os.path.exists(base) else sys.executable)
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    folders = [stdlib]
    dynload = os.path.realpath(sysconfig.get_config_var("DESTSHARED") or stdlib)
    if not dynload.startswith(stdlib + os.sep) and dynload != stdlib:
        folders.append(dynload)
    hidden = tuple(
        path
        for name in ("site-packages", "dist-packages")
        if os.path.isdir(path := os.path.join(stdlib, name))
    )
    loader = _interpreter_of(executable)
    libraries: set[str] = set()
    if loader is not None:
        modules = sorted(glob.glob(os.path.join(dynload, "*.so")))
        objects = [executable]
        objects += [m for m in modules if os.path.basename(m).split(".")[0] not in UNAVAILABLE]
        with ThreadPoolExecutor(max_workers=4) as pool:
            for found in pool.map(functools.partial(_loaded_by, loader), objects):
                libraries |= found
        libraries.add(loader)
    outside = tuple(
        sorted(p for p in libraries if not any(p.startswith(f + os.sep) for f in folders))
    )
    return PythonImage(executable, tuple(folders), hidden, outside)


def bwrap_command(
    bwrap: str,
    image: PythonImage,
    program: Sequence[str],
    *,
    disk_bytes: int,
    seccomp_fd: int | None,
) -> list[str]:
    """The argv that runs ``image.executable`` with ``program`` (its arguments) in a sandbox."""
    uid = str(SANDBOX_UID)
    argv = [
        bwrap,
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
        "--unshare-uts", "--unshare-cgroup",
        "--uid", uid, "--gid", uid, "--hostname", "promptrun-code",
        "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL",
        "--size", str(disk_bytes), "--tmpfs", WORKDIR,
    ]  # fmt: skip
    for folder in image.folders:
        argv += ["--ro-bind", folder, folder]
    for folder in image.hidden:
        argv += ["--tmpfs", folder, "--remount-ro", folder]
    argv += ["--ro-bind", image.executable, image.executable]
    for library in image.libraries:
        argv += ["--ro-bind", library, library]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--dev", "/dev", "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", WORKDIR]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", image.executable, *program]
