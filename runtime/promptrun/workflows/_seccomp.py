"""The seccomp filter a code node's sandbox runs under: no new tasks, no kernel attack surface.

bubblewrap loads it (``--seccomp FD``) just before it starts the node's interpreter. It is a
classic BPF program over ``struct seccomp_data`` (``nr`` at offset 0, ``arch`` at 4), built
here as bytes so no libseccomp is needed:

- another architecture than the one the filter was built for (a 32-bit ABI called from a
  64-bit process, or x32 numbers on x86-64) kills the process;
- creating a process or a thread (``clone``, ``fork``, ``vfork``; ``clone3`` answers ENOSYS so
  the C library falls back to ``clone``) fails with EPERM. That is the process-count limit that
  holds even where ``RLIMIT_NPROC`` does not: the kernel does not apply ``RLIMIT_NPROC`` to
  user id 0, and a sandbox started by root maps its user to root outside;
- ``socket`` (the node has no network anyway; ``socketpair`` stays, asyncio needs it), and the
  calls a sandbox never needs and exploits like: namespaces and mounts, ``ptrace`` and
  cross-process memory, keyrings, BPF, perf events, userfaultfd, io_uring, kernel modules,
  kexec, reboot, swap, accounting, file handles, the kernel log, quotas: EPERM.

Numbers are from the kernel's ``unistd_64.h`` (x86-64) and ``asm-generic/unistd.h`` (aarch64).
On another architecture there is no filter (:func:`seccomp_filter` returns None) and the
sandbox relies on its namespaces and rlimits alone; the start-up message says so.
"""

from __future__ import annotations

import errno
import platform
import struct

__all__ = ["seccomp_filter"]

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_BIT = 0x40000000

# Refused with ENOSYS: the caller falls back to an older call, refused below.
_NOSYS = ("clone3",)
_DENIED = (
    "clone", "fork", "vfork", "socket", "ptrace", "process_vm_readv", "process_vm_writev",
    "pidfd_getfd", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "mount_setattr", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct",
    "open_by_handle_at", "name_to_handle_at", "syslog", "quotactl", "lookup_dcookie",
)  # fmt: skip

_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {
        "clone": 56, "clone3": 435, "fork": 57, "vfork": 58, "socket": 41, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
        "chroot": 161, "mount_setattr": 442, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "keyctl": 250,
        "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169,
        "swapon": 167, "swapoff": 168, "acct": 163, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "syslog": 103, "quotactl": 179, "lookup_dcookie": 212,
    },
    "aarch64": {
        "clone": 220, "clone3": 435, "socket": 198, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "pidfd_getfd": 438, "unshare": 97, "setns": 268,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "mount_setattr": 442,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "syslog": 116, "quotactl": 60,
        "lookup_dcookie": 18,
    },
}  # fmt: skip

# struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_filter(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (default: this one), or None where none is known."""
    machine = machine or platform.machine()
    arch = _AUDIT_ARCH.get(machine)
    if arch is None:
        return None
    numbers = _NUMBERS[machine]
    rules = [(numbers[name], errno.ENOSYS) for name in _NOSYS]
    rules += [(numbers[name], errno.EPERM) for name in _DENIED if name in numbers]
    program = [_op(_LD_W_ABS, 4), _op(_JEQ_K, arch, jt=1), _op(_RET_K, _RET_KILL_PROCESS)]
    program.append(_op(_LD_W_ABS, 0))
    if machine == "x86_64":  # x32 system calls share the architecture value
        program += [_op(_JGE_K, _X32_BIT, jf=1), _op(_RET_K, _RET_KILL_PROCESS)]
    for number, code in rules:
        program += [_op(_JEQ_K, number, jf=1), _op(_RET_K, _RET_ERRNO | code)]
    program.append(_op(_RET_K, _RET_ALLOW))
    return b"".join(program)
