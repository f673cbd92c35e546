"""What an attacker with a key puts in a workflow's code node, one attack per entry.

Each attack is the body of a code node written the way someone who wants the server's secrets
would write it: try every way in, keep whatever works. Each way's outcome comes back as
``"OK <what it got>"`` or ``"ERR <exception>"``, so a test can tell "refused" from "got
nothing by luck", and can search everything returned for the secrets planted around it.

The node's inputs (``target``) tell the attacker everything it could hope to guess: the path of
the server's database and of a secret file beside it, the repository, the server's port, a
UDP port and a Unix socket listening on the host, a host folder to write into, and a marker.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ATTACKS", "Attack"]

_PRELUDE = """
def attempt(fn):
    try:
        return "OK " + repr(fn())[:2000]
    except BaseException as exc:
        return "ERR " + type(exc).__name__ + ": " + str(exc)[:300]
def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()
found = {}
"""


@dataclass(frozen=True, slots=True)
class Attack:
    """``code`` (with ``attempt``, ``read`` and ``found`` in scope) and what it goes after."""

    name: str
    goal: str
    code: str
    timeout: float = 10.0
    # Techniques that may come back "OK" because what they return is harmless (an empty
    # environment, the sandbox's own folder); everything they return is still searched.
    harmless: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        return _PRELUDE + self.code


ATTACKS = [
    Attack(
        "environment",
        "read the server's environment (provider keys, secrets)",
        """
import os
found["os.environ"] = attempt(lambda: dict(os.environ))
found["getenv"] = attempt(lambda: os.getenv("OPENAI_API_KEY"))
for pid in ("1", "self", str(os.getppid()), "thread-self"):
    found["/proc/" + pid + "/environ"] = attempt(lambda: read("/proc/" + pid + "/environ", "rb"))
def scan():
    got = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                got.append(read("/proc/" + name + "/environ", "rb"))
            except OSError:
                pass
    return got
found["every /proc/N/environ"] = attempt(scan)
return found
""",
        harmless=("os.environ", "getenv"),
    ),
    Attack(
        "files",
        "read the server's files: its database, a secret beside it, the repository, /etc",
        """
import os
for label, path in [("database", target["db_path"]), ("secret file", target["secret_file"]),
                    ("repository", target["repo_file"]), ("passwd", "/etc/passwd"),
                    ("shadow", "/etc/shadow"), ("server temp", target["server_temp_secret"]),
                    ("dotdot", "../" * 40 + target["secret_file"].lstrip("/")),
                    ("root home", "/root/.bash_history")]:
    found[label] = attempt(lambda: read(path, "rb"))
found["os.open"] = attempt(lambda: os.read(os.open(target["secret_file"], os.O_RDONLY), 999))
found["list server folder"] = attempt(lambda: os.listdir(os.path.dirname(target["db_path"])))
found["list /"] = attempt(lambda: sorted(os.listdir("/")))  # the sandbox's own root
found["symlink"] = attempt(lambda: (os.symlink(target["secret_file"], "l"), read("l"))[1])
found["hardlink"] = attempt(lambda: (os.link(target["secret_file"], "h"), read("h"))[1])
return found
""",
        harmless=("list /",),
    ),
    Attack(
        "write-outside",
        "write outside its own folder: the server's folder, the host's /tmp, /dev/shm, /",
        """
import os
m = target["marker"]
for label, path in [("server folder", target["host_dir"] + "/" + m),
                    ("tmp", "/tmp/" + m), ("dev shm", "/dev/shm/" + m), ("root", "/" + m),
                    ("stdlib folder", os.path.dirname(os.__file__) + "/" + m),
                    ("database", target["db_path"])]:
    found[label] = attempt(lambda: open(path, "ab").write(b"pwned"))
# Opening the library for writing, without writing: a broken sandbox must not break the host.
found["stdlib file"] = attempt(lambda: open(os.__file__, "ab").close() or "opened for writing")
found["mkdir outside"] = attempt(lambda: os.mkdir(target["host_dir"] + "/" + m + ".d"))
found["chmod"] = attempt(lambda: os.chmod(target["decoy"], 0o777))
found["remove"] = attempt(lambda: os.remove(target["decoy"]))
found["rename"] = attempt(lambda: os.rename(target["decoy"], target["decoy"] + m))
return found
""",
        harmless=("tmp",),  # its own /tmp: the test checks the host's stays untouched
    ),
    Attack(
        "network",
        "open sockets: TCP to the server's own port, UDP, the Unix socket of a database",
        """
def tcp():
    import socket
    s = socket.create_connection(("127.0.0.1", target["server_port"]), timeout=2)
    s.sendall(b"GET /health HTTP/1.0\\r\\n\\r\\n")
    return s.recv(200)
found["tcp to server"] = attempt(tcp)
def http():
    import urllib.request
    return urllib.request.urlopen(target["server_url"] + "/health", timeout=2).read()
found["urllib to server"] = attempt(http)
def udp():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(target["marker"].encode(), ("127.0.0.1", target["udp_port"]))
    return "sent"
found["udp"] = attempt(udp)
def unix(path):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(target["marker"].encode())
    return "connected"
found["unix socket"] = attempt(lambda: unix(target["unix_socket"]))
found["postgres socket"] = attempt(lambda: unix("/var/run/postgresql/.s.PGSQL.5432"))
found["dns"] = attempt(lambda: __import__("socket").getaddrinfo("example.com", 80))
return found
""",
    ),
    Attack(
        "processes",
        "start processes: subprocess, os.system, fork, posix_spawn, a second interpreter",
        """
import os, sys
out = target["host_dir"] + "/" + target["marker"] + ".spawned"
def run(*argv):
    import subprocess
    return subprocess.run(list(argv), capture_output=True)
found["subprocess sh"] = attempt(lambda: run("/bin/sh", "-c", "id > " + out).returncode)
found["subprocess python"] = attempt(lambda: run(sys.executable, "-c", "print(1)").stdout)
found["os.system"] = attempt(lambda: os.system("id > " + out) and 1 / 0)
def forked():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid
found["fork"] = attempt(forked)
found["posix_spawn"] = attempt(lambda: os.posix_spawn(sys.executable, [sys.executable, "-c", "1"],
                                                      {}))
found["execv"] = attempt(lambda: os.execv("/bin/sh", ["sh", "-c", "id > " + out]))
def thread():
    import threading
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    return "started"
found["thread"] = attempt(thread)
return found
""",
    ),
    Attack(
        "database",
        "reach the database: connect to it, ATTACH it, VACUUM INTO a host path",
        """
import sqlite3
def direct():
    return sqlite3.connect(target["db_path"]).execute(
        "select name from sqlite_master").fetchall()
found["connect"] = attempt(direct)
def attach():
    c = sqlite3.connect(":memory:")
    c.execute("ATTACH DATABASE ? AS x", (target["db_path"],))
    return c.execute("select * from x.sqlite_master").fetchall()
found["attach"] = attempt(attach)
def attach_uri():
    c = sqlite3.connect(":memory:", uri=True)
    c.execute("ATTACH DATABASE ? AS x", ("file:" + target["db_path"] + "?mode=ro",))
    return c.execute("select * from x.sqlite_master").fetchall()
found["attach uri"] = attempt(attach_uri)
def vacuum_into():
    c = sqlite3.connect(":memory:", isolation_level=None)  # VACUUM needs no open transaction
    c.execute("create table t(x)")
    c.execute("insert into t values (?)", (target["marker"],))
    c.execute("VACUUM INTO ?", (target["host_dir"] + "/" + target["marker"] + ".db",))
    return "written"
found["vacuum into"] = attempt(vacuum_into)
def extension():
    c = sqlite3.connect(":memory:")
    c.enable_load_extension(True)
    return c.load_extension("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0")
found["load_extension"] = attempt(extension)
return found
""",
    ),
    Attack(
        "subinterpreter",
        "run code in a sub-interpreter, where no audit hook is installed",
        """
import os
def sub():
    import _xxsubinterpreters as interpreters
    interp = interpreters.create()
    script = (
        "import os\\n"
        "got = {'env': dict(os.environ)}\\n"
        "for p in (%r, %r, '/proc/1/environ'):\\n"
        "    try:\\n"
        "        got[p] = open(p, 'rb').read().decode('latin-1')\\n"
        "    except OSError as e:\\n"
        "        got[p] = 'ERR ' + str(e)\\n"
        "open('sub.out', 'w').write(repr(got))\\n"
    ) % (target["secret_file"], target["db_path"])
    interpreters.run_string(interp, script)
    return read("sub.out")
found["_xxsubinterpreters"] = attempt(sub)
return found
""",
        harmless=("_xxsubinterpreters",),  # it may run; it must see nothing either
    ),
    Attack(
        "ctypes",
        "call libc through ctypes: system(), syscall(), getenv(), open() of a secret",
        """
import os
def libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)
found["system"] = attempt(lambda: libc().system(("id > " + target["host_dir"] + "/"
                                                  + target["marker"] + ".ctypes").encode()))
found["syscall fork"] = attempt(lambda: libc().syscall(57, 0, 0, 0))
found["syscall clone"] = attempt(lambda: libc().syscall(56, 17, 0, 0, 0, 0))
def getenv():
    import ctypes
    function = libc().getenv
    function.restype = ctypes.c_char_p
    return function(b"OPENAI_API_KEY")
found["getenv"] = attempt(getenv)
def libc_open():
    import ctypes
    fd = libc().open(target["secret_file"].encode(), 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open failed")
    buf = ctypes.create_string_buffer(999)
    return buf.raw[: libc().read(fd, buf, 999)]
found["open secret"] = attempt(libc_open)
found["unshare"] = attempt(lambda: libc().unshare(0x10000000))
for label, value in list(found.items()):
    # a libc call that fails returns -1 (or 127<<8 from system) instead of raising
    if value in ("OK -1", "OK 32512", "OK b''"):
        found[label] = "ERR returned " + value[3:]
return found
""",
        harmless=("getenv",),
    ),
    Attack(
        "fork-bomb",
        "fork until the machine runs out of processes",
        # Bounded, children exit at once: if the sandbox ever let one fork through, the test
        # fails on the first, and the machine running the tests does not pay for it.
        """
import os
count = 0
try:
    while count < 64:
        if os.fork() == 0:
            os._exit(0)
        count += 1
except BaseException as exc:
    found["fork loop"] = "ERR " + type(exc).__name__ + ": " + str(exc) + " after " + str(count)
else:
    found["fork loop"] = "OK forked " + str(count)
return found
""",
    ),
    Attack(
        "memory-bomb",
        "allocate memory until the machine swaps or the server is OOM-killed",
        """
import mmap
def grow():
    held = []
    for _ in range(16):  # 4 GiB: four times the cap, and bounded should the cap fail
        held.append(bytearray(256 * 1024 * 1024))
    return len(held)
found["bytearrays"] = attempt(grow)
found["mmap 16 GiB"] = attempt(lambda: len(mmap.mmap(-1, 16 << 30)))
return found
""",
    ),
    Attack(
        "disk-fill",
        "fill the disk, in many files each below the per-file cap",
        """
import os
written = 0
try:
    for i in range(9):  # 135 MiB: twice the cap, and bounded should the cap fail
        with open("fill%d" % i, "wb") as f:
            for _ in range(15):
                f.write(b"x" * (1 << 20))
                written += 1
except OSError as exc:
    found["fill"] = "ERR " + exc.strerror + " after %d MiB" % written
else:
    found["fill"] = "OK wrote %d MiB" % written
return found
""",
    ),
    Attack(
        "infinite-loop",
        "spin forever on the CPU",
        """
while True:
    pass
""",
        timeout=1.0,
    ),
    Attack(
        "signals",
        "kill the server: signal the parent, PID 1, every process it may signal",
        """
import os, signal
if os.getpid() > 2:
    # Not in a PID namespace of its own: the sandbox is broken, and kill(-1) from here would
    # take the host down with the test run. Report it (the test fails on it) instead.
    return {"pid namespace": "OK none: pid %d" % os.getpid()}
found["kill parent"] = attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))
found["kill pid 1"] = attempt(lambda: os.kill(1, signal.SIGKILL))
found["kill everything"] = attempt(lambda: os.kill(-1, signal.SIGKILL))
return found
""",
        # Inside its PID namespace these reach only the sandbox's own init, which ignores
        # them: they may "succeed"; the test checks the server is still up.
        harmless=("kill parent", "kill pid 1", "kill everything"),
    ),
]
