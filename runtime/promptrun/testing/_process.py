"""``ServerProcess``: ``python -m promptrun serve`` as a child process, for tests.

For what only a real process shows: signals, a kill -9 in the middle of writing, a restart
on the same database and port.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from promptrun.testing._inprocess import sandbox_path

__all__ = ["ServerProcess"]

_LISTENING = re.compile(r"promptrun serve: listening on (http://\S+)")
_GENERATED = re.compile(r"promptrun serve: generated API key (\S+)")


class ServerProcess:
    """A ``promptrun serve`` subprocess on ``db_path``; ``start()`` returns once it is healthy.

    It is given ``api_key`` (default: a fresh one) unless ``args`` has an ``--api-key`` or
    ``generate_key`` is true; then ``.api_key`` is the key the server prints, if it prints
    one. Its output goes to a log file (``.output()``), so no pipe can fill up and stall it.
    ``max_open_files`` sets the process's open-files limit, as ``ulimit -n`` would.
    """

    def __init__(
        self,
        db_path: Path | str,
        *,
        port: int = 0,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        api_key: str | None = None,
        generate_key: bool = False,
        startup_timeout: float = 20.0,
        max_open_files: int | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.port = port
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.api_key = api_key or "pl_test_" + secrets.token_hex(16)
        self.generate_key = generate_key
        self.startup_timeout = startup_timeout
        self.max_open_files = max_open_files
        self.base_url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="promptrun-serve-")
        self._log_path = Path(self._log_dir.name) / "serve.log"
        self._starts = 0

    def _command(self) -> list[str]:
        command = [
            sys.executable, "-m", "promptrun", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db_path),
        ]  # fmt: skip
        if "--api-key" not in self.args and not self.generate_key:
            command += ["--api-key", self.api_key]
        return command + self.args

    def output(self) -> str:
        """Everything the process printed (stdout and stderr) across its starts."""
        return self._log_path.read_text() if self._log_path.exists() else ""

    def start(self) -> ServerProcess:
        """Start it and wait for its listening line and a healthy ``/health``."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the server process is already running")
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        seen = len(self.output())
        log = self._log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=self._limit_files if self.max_open_files is not None else None,
            )
        finally:
            log.close()
        self._starts += 1
        deadline = time.monotonic() + self.startup_timeout
        while True:
            printed = self.output()[seen:]
            match = _LISTENING.search(printed)
            if match:
                generated = _GENERATED.search(printed)
                if generated:
                    self.api_key = generated.group(1)
                self.base_url = match.group(1)
                self.port = int(self.base_url.rsplit(":", 1)[1])
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"promptrun serve did not start:\n{self.output()[seen:]}")
            time.sleep(0.02)
        self._wait_healthy(deadline)
        return self

    def _limit_files(self) -> None:
        # In the child, before exec: as `ulimit -n N` in a shell.
        import resource

        assert self.max_open_files is not None
        limit = self.max_open_files
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.base_url}/health did not answer 200 in time")
            time.sleep(0.02)

    def sandbox_url(self, provider: str) -> str:
        return self.base_url + sandbox_path(provider)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> ServerProcess:
        """Stop (if running) and start again on the same port and database."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        return self.start()

    def close(self) -> None:
        self.kill()
        self._log_dir.cleanup()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self.close()
