"""Process facts shared by the spool (whose segments are owned by live processes, and name
the family of processes that wrote them) and the code-node scratch folders (swept when the
server that made them is gone)."""

from __future__ import annotations

import os

__all__ = ["FAMILY", "forked", "pid_alive"]

#: Names this process and the children it forks (they inherit it): a parent ships at its end
#: the records its children left in the spool (a ``multiprocessing`` worker is ended with
#: SIGTERM, an ``os.fork()`` child often with ``os._exit``: neither ships at its exit).
FAMILY = os.urandom(4).hex()
_forked = False


def _after_fork_in_parent() -> None:
    global _forked
    _forked = True


def _after_fork_in_child() -> None:
    global _forked
    _forked = False  # a child has forked no one yet


os.register_at_fork(after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


def forked() -> bool:
    """True once this process has forked (``os.fork()``, multiprocessing's fork start)."""
    return _forked


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
