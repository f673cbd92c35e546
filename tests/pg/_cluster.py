"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temp dir, pg_ctl start.

The server listens only on a unix socket inside its own directory, so any number of clusters
(tests in parallel, a benchmark beside a test run) never compete for a TCP port. PostgreSQL
refuses to run as root; as root the commands run as the ``postgres`` OS user, which owns the
directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["PostgresCluster", "PostgresMissing", "find_bindir", "run_async", "run_sql"]

T = TypeVar("T")
_PORT = 5432  # private to the socket directory: no two clusters share one


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """Where initdb and pg_ctl are: ``pg_config --bindir``, else Debian's versioned dirs."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            found = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(found))
        except (OSError, subprocess.SubprocessError):
            pass
    # Debian's pg_config (postgresql-common) may name the client's bindir; the server's is here.
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise PostgresMissing(
        "PostgreSQL server binaries not found (no initdb/pg_ctl); install Debian's package: "
        "apt-get install -y postgresql (make deps does it as root)"
    )


class PostgresCluster:
    """``with PostgresCluster() as pg: pg.dsn("db")`` — started on enter, removed on exit.

    ``durable=False`` (tests) turns fsync off: a crash loses a throwaway cluster anyway.
    """

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bindir = find_bindir()
        self.durable = durable
        self.settings = dict(settings or {})
        self._as_postgres = os.geteuid() == 0
        # As root the server runs as postgres, which must reach the directory: /tmp, whatever
        # TMPDIR says.
        where = "/tmp" if self._as_postgres else None
        self.root = Path(tempfile.mkdtemp(prefix="promptrun-pg-", dir=where))
        self.data = self.root / "data"
        self.sockets = self.root
        self.log = self.root / "server.log"
        self._started = False

    def _run(self, *command: str) -> str:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{command[0]} failed ({done.returncode}): {done.stderr or done.stdout}\n{log}"
            )
        return done.stdout

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.sockets}'",
            "port": str(_PORT),
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if not self.durable:
            options |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options |= self.settings
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in options.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self._started = True
        return self

    def stop(self) -> None:
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg URL for ``database`` over the cluster's unix socket."""
        return f"postgresql://postgres@/{database}?host={self.sockets}&port={_PORT}"

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` to completion from synchronous code, in a thread with its own loop.

    A thread of its own, so this works whether or not an event loop runs in the caller's.
    """
    import asyncio
    import threading

    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, asyncio.run(make())))  # type: ignore[arg-type]
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def run_sql(dsn: str, *statements: str) -> None:
    """Run statements on ``dsn`` from synchronous code (a fixture, a benchmark's set-up)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    run_async(run)
