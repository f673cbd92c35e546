"""Serve until SIGINT or SIGTERM, then stop cleanly.

Stopping closes the listening socket, lets requests in flight finish (up to
``shutdown_timeout``), and flushes the store's writer before the process exits 0, so every
answered write is on disk.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import importlib.util
import logging
import signal
import socket
import sys
from typing import TextIO

from aiohttp import web

from promptrun.server._banner import Banner, client_url
from promptrun.server._body_budget import budget_note
from promptrun.server._connections import new_runner, start_site
from promptrun.server._key_report import describe_keys
from promptrun.server._state import CONFIG, KEYRING, ServerConfig
from promptrun.server.app import create_app
from promptrun.server.store._pg_url import redact
from promptrun.server.store.base import StoreConfigError

__all__ = ["run_server", "serve"]


def _database(config: ServerConfig) -> str:
    if config.database_url is not None:
        return redact(config.database_url)
    return str(config.db_path)


def _say(out: TextIO, line: str) -> None:
    out.write(f"promptrun serve: {line}\n")
    out.flush()


async def _say_code_nodes(app: web.Application, out: TextIO, err: TextIO) -> None:
    """Say at start how code nodes will run: sandboxed, refused (and how to fix), or unsafe."""
    from promptrun.server.routes.workflows import WORKFLOWS

    sandbox = app[WORKFLOWS].code
    status = await sandbox.status()
    if status.mode == "bwrap":
        _say(out, f"code nodes: {status.detail}")
    elif status.mode == "refused":
        _say(err, f"code nodes are REFUSED: {sandbox.refusal(status)}")
    else:
        for line in _UNSAFE_WARNING:
            _say(err, line)


async def _say_ready(app: web.Application, base_url: str, out: TextIO, err: TextIO) -> None:
    """The start-up lines: a new key, code nodes, where it listens, the dashboard, which key
    to use, and the export lines for another terminal."""
    config = app[CONFIG]
    generated = app[KEYRING].generated
    if generated is not None:
        _say(
            out,
            f"generated API key {generated.key} (workspace {generated.workspace}); "
            "it is not shown again",
        )
    lines, warnings = describe_keys(app[KEYRING].report, _database(config), config.key_source)
    for line in lines:
        _say(out, line)
    for line in warnings:
        _say(err, f"WARNING {line}")
    await _say_code_nodes(app, out, err)
    note = budget_note(
        config.max_inflight_body_bytes, config.max_body_bytes, config.max_record_bytes
    )
    if note is not None:
        _say(err, note)
    _say(out, f"listening on {base_url} (db {_database(config)})")
    banner = Banner(
        base_url=base_url,
        generated_key=generated.key if generated is not None else None,
        configured_keys=bool(config.api_keys),
        sandbox=config.sandbox,
        key_source=config.key_source,
    )
    for line in banner.notes():
        _say(out, line)
    out.write("\n" + "\n".join(banner.exports()) + "\n\n")
    out.flush()


_UNSAFE_WARNING = (
    "WARNING " + "!" * 70,
    "WARNING: --unsafe-code-nodes: workflow code nodes run WITHOUT the sandbox.",
    "WARNING: anyone with an API key that can publish a workflow can run code as this",
    "WARNING: server's user: read its files, its environment and every workspace's data.",
    "WARNING: Use it only where every key holder is trusted; install bubblewrap instead.",
    "WARNING " + "!" * 70,
)


async def serve(
    config: ServerConfig,
    *,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    shutdown_timeout: float = 30.0,
    own_process: bool = False,
) -> int:
    """Run the server until a stop signal; the exit status (0, or 1 if it could not start).

    ``own_process``: the server is all this process does (``promptrun serve``), so it may tune
    the process's garbage collector (:func:`_tune_gc`); an application embedding it is left as
    it is.
    """
    busy = _address_taken(config.host, config.port)
    if busy is not None:  # before the store is opened: a first start must not make a
        _say(err, f"error: cannot start: {busy}")  # database whose new key nobody saw
        return 1
    app = create_app(config)
    runner = new_runner(app, shutdown_timeout=shutdown_timeout)
    try:
        await runner.setup()
        note = await start_site(runner, config.host, config.port)
    except (OSError, StoreConfigError, RuntimeError) as exc:
        _say(err, f"error: cannot start: {exc}")
        generated = app[KEYRING].generated if KEYRING in app else None
        if generated is not None:  # made by this start all the same: show it once
            _say(
                err,
                f"this start generated API key {generated.key} (workspace "
                f"{generated.workspace}) and kept it in {_database(config)}; use it next time",
            )
        await runner.cleanup()
        return 1
    if note is not None:
        _say(err, f"note: {note}")
    if own_process:
        _tune_gc()
    if importlib.util.find_spec("opentelemetry.proto") is None:
        _say(
            err,
            "note: /v1/traces takes OTLP/JSON only; for OTLP protobuf (what OpenTelemetry "
            "SDKs send) pip install 'promptrun[otlp]'",
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before saying it is ready, so that a Ctrl-C right after "listening on" stops it cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host, port = runner.addresses[0][:2]
    try:
        await _say_ready(app, client_url(host, port), out, err)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    return 0


def _address_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (another process has it), or None.

    Bound the way the server binds (``SO_REUSEADDR``, so a port in TIME_WAIT is not "taken"),
    then let go at once. Port 0 (any free port) is never taken.
    """
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return None  # the server's own bind will say what is wrong with the host
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return None  # not "taken": let the server's bind report it
                return (
                    f"port {port} on {host} is already in use (another promptrun serve, or "
                    f"another program); stop it, or pick another port with --port N "
                    "(--port 0 picks a free one)"
                )
    return None


#: Young-generation threshold for ``promptrun serve``: CPython's default (700) ran a collection
#: every ~45 records of a batch ingest, about a quarter of the event loop's CPU
#: (benchmarks/results/2026-12-04-ingest-profile.md); the objects a request allocates are
#: almost all freed by reference counting, so later collections find the same garbage.
_GEN0_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Freeze what start-up made (modules, the app, the store: never garbage) out of every
    collection, and collect the young generation less often."""
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, _GEN0_THRESHOLD), gen1, gen2)


def run_server(config: ServerConfig) -> int:
    """``promptrun serve``'s body: its own event loop, its exit status."""
    # Warnings and errors (an unexpected exception in a handler) go to stderr, one line each.
    logging.basicConfig(level=logging.WARNING, format="promptrun serve: %(levelname)s %(message)s")
    return asyncio.run(serve(config, own_process=True))
