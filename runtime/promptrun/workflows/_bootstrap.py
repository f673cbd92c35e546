"""The program a code node's interpreter runs (its source is sent with ``-c``).

It must stay self-contained: it runs under ``python -I -S`` with an empty environment, inside
the sandbox of :mod:`promptrun.workflows._bwrap` (or, with ``--unsafe-code-nodes``, as a plain
child process), and imports nothing from promptrun, nor ``json`` or ``base64`` (with ``re``
they are most of an interpreter's start-up): the job comes in as ``marshal`` (from the host,
trusted, code object included) and the answer goes out as JSON written here with ``_json``'s
string quoting; the host decodes it as the untrusted JSON it is. Order matters: read the job,
set resource limits, (unsandboxed only) ask to be killed with the parent, load the compiled
code, keep a handle on the real stdout, and only then install the audit hook and call the
user's function.

The audit hook is an extra layer, not the boundary (Python's audit hooks are not a sandbox:
code can run where no hook is installed, and SQLite opens files without an audit event). Its
state lives in closure cells holding only immutable values and C functions, so the user's
code cannot reach or monkeypatch what it decides with.
"""

from __future__ import annotations

SOURCE = r"""
import sys, os, marshal, io


def _limits(job):
    try:
        import resource
    except ImportError:
        return
    cpu = int(job["timeout"]) + 2
    for name, value in (
        ("RLIMIT_CPU", cpu),
        ("RLIMIT_AS", job["max_memory"]),
        ("RLIMIT_FSIZE", job["max_file_bytes"]),
        ("RLIMIT_NOFILE", job["max_open_files"]),
        ("RLIMIT_NPROC", 1),
        ("RLIMIT_CORE", 0),
    ):
        limit = getattr(resource, name, None)
        if limit is None:
            continue
        soft, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY and hard < value:
            value = hard
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass


def _die_with_parent(parent):
    # Unsandboxed only (bubblewrap does this itself): SIGKILL when the server dies, and if it
    # died before the request was made, exit now.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != parent:
        os._exit(1)


def _install_hook(workdir, readable):
    import posix, _stat

    lstat, stat, readlink = posix.lstat, posix.stat, posix.readlink
    is_link, is_dir = _stat.S_ISLNK, _stat.S_ISDIR
    str_t, bytes_t, int_t, none_t, type_, len_ = str, bytes, int, type(None), type, len
    startswith, split, join, decode = str.startswith, str.split, "/".join, bytes.decode
    Refused, OSError_ = PermissionError, OSError
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    work, work_prefix = workdir, workdir + "/"
    read_prefixes = tuple(p + "/" for p in readable)
    denied = frozenset((
        "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
        "os.forkpty", "os.kill", "os.killpg", "os.startfile", "os.chdir", "os.link",
        "os.symlink", "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
        "socket.gethostbyname", "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "ctypes.cdata",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "resource.setrlimit",
        "resource.prlimit", "signal.pthread_kill", "sqlite3.enable_load_extension",
        "sys._current_frames",
    ))
    denied_imports = frozenset((
        "ctypes", "_ctypes", "_posixsubprocess", "_socket", "_xxsubinterpreters",
        "_interpreters", "_xxinterpchannels",
    ))
    path_events = frozenset((
        "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
        "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "os.listxattr",
        "os.getxattr", "shutil.rmtree", "shutil.copyfile", "shutil.copymode",
        "shutil.copystat", "shutil.copytree", "shutil.move", "shutil.chown",
    ))

    def as_text(path):
        kind = type_(path)
        if kind is str_t:
            return path
        if kind is bytes_t:
            return decode(path, "utf-8", "surrogateescape")
        return None

    def resolve(path):
        if not startswith(path, "/"):
            path = work_prefix + path
        todo = split(path, "/")
        todo.reverse()
        parts = []
        hops = 0
        while todo:
            part = todo.pop()
            if part == "" or part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/" + join(parts + [part])
            try:
                mode = lstat(candidate).st_mode
            except OSError_:
                parts.append(part)
                continue
            if is_link(mode):
                hops += 1
                if hops > 40:
                    raise Refused("code nodes may not follow this many symbolic links")
                target = split(readlink(candidate), "/")
                if target and target[0] == "":
                    parts = []
                target.reverse()
                todo.extend(target)
                continue
            parts.append(part)
        return "/" + join(parts)

    def in_work(real):
        return real == work or startswith(real, work_prefix)

    def refuse(what, path):
        raise Refused(
            "code nodes may not " + what + " " + repr(path)
            + ": only files in their own working folder are theirs"
        )

    def check_path(what, path, *, reading=False):
        if type_(path) is int_t or type_(path) is none_t:
            return
        text = as_text(path)
        if text is None:
            raise Refused("code nodes give paths as str or bytes")
        real = resolve(text)
        if in_work(real):
            return
        if reading and startswith(real, read_prefixes):
            return
        refuse(what, text)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if type_(path) is int_t:
                return
            text = as_text(path)
            if text is None:
                raise Refused("code nodes give paths as str or bytes")
            real = resolve(text)
            if in_work(real):
                return
            writing = (type_(flags) is int_t and flags & write_flags) or (
                type_(mode) is str_t
                and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            )
            if not writing and startswith(real, read_prefixes):
                try:
                    directory = is_dir(stat(real).st_mode)
                except OSError_:
                    directory = False
                if not directory:
                    return  # the interpreter's own library, read for imports
            refuse("open", text)
        elif event in denied:
            raise Refused("code nodes may not use " + event)
        elif event == "import":
            if args[0] in denied_imports:
                raise Refused("code nodes may not import " + args[0])
        elif event == "os.listdir" or event == "os.scandir":
            check_path("list", args[0], reading=True)
        elif event == "os.rename" or event == "os.replace":
            check_path("move", args[0])
            check_path("move", args[1])
        elif event in path_events:
            if len_(args):
                check_path("change", args[0])
        elif event == "sqlite3.connect":
            if args[0] != ":memory:" and args[0] != b":memory:":
                check_path("open", args[0])

    sys.addaudithook(hook)


def _error(exc):
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<code node>":
            line = tb.tb_lineno
        tb = tb.tb_next
    text = type(exc).__name__
    message = str(exc)
    if message:
        text += ": " + message
    return {"ok": False, "error": text[:4000], "line": line}


class _Discard(io.TextIOBase):
    def writable(self):
        return True

    def write(self, text):
        return len(text)


def _json(value):
    import _json

    quote = _json.encode_basestring_ascii
    out = []
    add = out.append

    def put(v):
        if v is None:
            add("null")
        elif v is True:
            add("true")
        elif v is False:
            add("false")
        elif isinstance(v, int):
            add(int.__repr__(v))
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError("Out of range float values are not JSON compliant: " + repr(v))
            add(float.__repr__(v))
        elif isinstance(v, str):
            add(quote(v))
        elif isinstance(v, (list, tuple)):
            add("[")
            for i, item in enumerate(v):
                if i:
                    add(",")
                put(item)
            add("]")
        elif isinstance(v, dict):
            add("{")
            for i, (key, item) in enumerate(dict.items(v)):
                if isinstance(key, str):
                    pass
                elif key is True or key is False or key is None:
                    key = {True: "true", False: "false", None: "null"}[key]
                elif isinstance(key, int):
                    key = int.__repr__(key)
                elif isinstance(key, float):
                    key = float.__repr__(key)
                else:
                    raise TypeError("keys must be str, int, float, bool or None, not "
                                    + type(key).__name__)
                add(("," if i else "") + quote(key) + ":")
                put(item)
            add("}")
        else:
            raise TypeError("Object of type " + type(v).__name__ + " is not JSON serializable")

    put(value)
    return "".join(out)


def _main():
    job = marshal.loads(sys.stdin.buffer.read())
    _limits(job)
    if job.get("parent") and sys.platform.startswith("linux"):
        _die_with_parent(job["parent"])
    namespace = {"__name__": "__code_node__", "__builtins__": __builtins__}
    exec(job["code"], namespace)
    function = namespace.pop("__node__")
    out = os.fdopen(os.dup(1), "wb")
    sys.stdout = sys.stderr = _Discard()
    workdir = os.path.realpath(os.getcwd())
    readable = [os.path.realpath(p) for p in job["readable"]]
    if job.get("audit_hook", True):
        _install_hook(workdir, readable)
    try:
        envelope = {"ok": True, "value": function(**job["inputs"])}
    except BaseException as exc:
        envelope = _error(exc)
    try:
        data = _json(envelope)
    except (TypeError, ValueError, RecursionError) as exc:
        data = _json({"ok": False, "error": "the code returned a value that is not JSON: "
                      + str(exc)[:500], "line": None, "stage": "result"})
    out.write(data.encode("ascii"))
    out.flush()
    os._exit(0)


_main()
"""
