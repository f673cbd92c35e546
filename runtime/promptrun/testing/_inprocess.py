"""``running_server()``: a promptrun server on a background thread, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunningServer", "running_server", "sandbox_path"]


def _sandbox_paths() -> dict[str, str]:
    from promptrun.pipeline import TABLE

    paths = {name: info.sandbox_path for name, info in TABLE.items()}
    paths["azure"] = paths["openai.azure"]
    return paths


def sandbox_path(provider: str) -> str:
    """The path under a server's base URL that a provider SDK's ``base_url`` should be."""
    try:
        return _sandbox_paths()[provider]
    except KeyError:
        known = ", ".join(sorted(_sandbox_paths()))
        raise ValueError(f"no sandbox for provider {provider!r}; known: {known}") from None


@dataclass(slots=True, kw_only=True)
class RunningServer:
    """A server running in this process: where it is, a key it accepts, its database."""

    base_url: str
    api_key: str
    db_path: Path
    _stop: _Stopper = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def sandbox_url(self, provider: str) -> str:
        """The base URL for a provider SDK, e.g. ``.../sandbox/openai/v1`` for ``"openai"``."""
        return self.base_url + sandbox_path(provider)

    def stop(self) -> None:
        """Stop serving (requests in flight finish) and flush the store; idempotent."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()


class _Stopper:
    """Sets an asyncio event of the server's loop from any thread."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None

    def set(self) -> None:
        if self.loop is not None and self.event is not None:
            # A RuntimeError means the loop already finished: nothing left to stop.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.event.set)


def _test_key() -> str:
    return "pl_test_" + secrets.token_hex(16)


@contextmanager
def running_server(**config_overrides: Any) -> Iterator[RunningServer]:
    """Run ``promptrun serve`` on 127.0.0.1, a free port, in a background thread.

    Keyword arguments override :class:`~promptrun.server.app.ServerConfig` fields. Without
    ``db_path`` the database is a temporary file removed afterwards. Without ``api_keys``
    the server accepts one fresh key, ``.api_key``; with them, ``.api_key`` is the first.
    """
    from promptrun.server.app import ServerConfig
    from promptrun.server.auth import parse_key_spec

    with tempfile.TemporaryDirectory(prefix="promptrun-test-") as tmp:
        overrides = dict(config_overrides)
        overrides.setdefault("db_path", Path(tmp) / "promptrun.db")
        overrides.setdefault("api_keys", (_test_key(),))
        overrides.setdefault("generate_key", False)
        overrides.setdefault("host", "127.0.0.1")
        overrides["port"] = overrides.get("port", 0)
        config = ServerConfig(**overrides)
        api_key = parse_key_spec(config.api_keys[0])[1] if config.api_keys else ""
        started: Future[str] = Future()
        stop = _Stopper()
        thread = threading.Thread(
            target=_serve_in_thread, args=(config, started, stop), name="promptrun-test-server"
        )
        thread.start()
        try:
            base_url = started.result(timeout=30)
        except BaseException:
            stop.set()
            thread.join()
            raise
        server = RunningServer(
            base_url=base_url, api_key=api_key, db_path=Path(config.db_path),
            _stop=stop, _thread=thread,
        )  # fmt: skip
        try:
            yield server
        finally:
            server.stop()


def _serve_in_thread(config: Any, started: Future[str], stop: _Stopper) -> None:
    asyncio.run(_serve(config, started, stop))


async def _serve(config: Any, started: Future[str], stop: _Stopper) -> None:
    from promptrun.server._connections import new_runner, start_site
    from promptrun.server.app import create_app

    runner = new_runner(create_app(config), shutdown_timeout=5.0)
    try:
        await runner.setup()
        await start_site(runner, config.host, config.port)
    except BaseException as exc:
        await runner.cleanup()
        started.set_exception(exc)
        return
    stop.event = asyncio.Event()
    stop.loop = asyncio.get_running_loop()
    host, port = runner.addresses[0][:2]
    started.set_result(f"http://{host}:{port}")
    try:
        await stop.event.wait()
    finally:
        await runner.cleanup()
