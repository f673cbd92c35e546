"""The ``promptrun`` command (also ``python -m promptrun``).

Subcommands: ``serve`` runs the local PromptLayer-compatible server (and its dashboard);
``keys`` manages its API keys (through it, or on its database with ``--db``);
``run``, ``templates``, ``logs``, ``workflows`` and ``traces`` talk to a PromptLayer-compatible server
(``--base-url``/``PROMPTLAYER_BASE_URL``, ``--api-key``/``PROMPTLAYER_API_KEY``). Each
subcommand imports what it needs when it runs, so ``promptrun --help`` stays quick.

Exit status: 0 done, 1 the server or the provider failed (or could not be reached), 2 the
command line or its input files were wrong, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from promptrun._cli._common import Commands, Parser, number, whole_number

__all__ = ["main"]


# Option types: usage errors name the option and say what was expected
# (`--port: expected a whole number from 0 to 65535, got 70000`).
_positive_int = whole_number(1)
_non_negative_int = whole_number(0)
_port = whole_number(0, 65535)
_non_negative_float = number(0)
_positive_float = number(0, above=True)


def _add_serve(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a local PromptLayer-compatible server (SQLite or PostgreSQL)",
        description=(
            "Serve the PromptLayer REST API locally (prompt registry and request log) with "
            "fake OpenAI, Azure, Anthropic, Gemini, Bedrock, Vertex AI, Mistral and OpenRouter "
            "APIs under /sandbox. Keys: --api-key, else "
            "PROMPTLAYER_API_KEY, else the keys already in the database, else a new key is "
            "generated and printed once."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8765, help="0 picks a free one")
    serve.add_argument(
        "--db",
        metavar="PATH|URL",
        help="a SQLite file, or postgresql://USER@HOST/DB: one PostgreSQL database can be "
        "served by several promptrun serve processes at once (default: promptrun.db in your "
        "data folder, $XDG_DATA_HOME/promptrun or ~/.local/share/promptrun; on macOS "
        "~/Library/Application Support/promptrun)",
    )
    serve.add_argument(
        "--db-connections",
        type=_positive_int,
        default=10,
        metavar="N",
        help="PostgreSQL connections per process (default 10)",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="[WORKSPACE:]KEY",
        help="accept this key (repeatable); WORKSPACE:KEY puts it in a named workspace "
        "(default: $PROMPTLAYER_API_KEY, used only when no --api-key is given)",
    )
    serve.add_argument("--no-sandbox", action="store_true", help="do not serve /sandbox")
    serve.add_argument(
        "--sandbox-latency-ms",
        type=_non_negative_float,
        default=0.0,
        metavar="MS",
        help="the sandbox providers wait this long before answering (default 0)",
    )
    serve.add_argument(
        "--sandbox-chunks",
        type=_positive_int,
        default=8,
        metavar="N",
        help="chunks in a streamed sandbox answer (default 8)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=os.environ.get("PROMPTRUN_MAX_BODY_BYTES", str(4 * 1024 * 1024)),
        metavar="N",
        help="largest request body, after decompression, except on the logging endpoints; "
        "past it a 413 (default $PROMPTRUN_MAX_BODY_BYTES, else 4194304: 4 MiB)",
    )
    serve.add_argument(
        "--max-record-bytes",
        type=_positive_int,
        default=os.environ.get("PROMPTRUN_MAX_RECORD_BYTES", str(32 * 1024 * 1024)),
        metavar="N",
        help="largest body of the logging endpoints (/track-request, /log-request, "
        "/promptrun/v1/ingest), after decompression: one log record holds a whole prompt "
        "and answer, so it must fit a long-context prompt (default $PROMPTRUN_MAX_RECORD_BYTES, "
        "else 33554432: 32 MiB)",
    )
    serve.add_argument(
        "--max-inflight-body-bytes",
        type=_non_negative_int,
        default=os.environ.get("PROMPTRUN_MAX_INFLIGHT_BODY_BYTES", str(128 * 1024 * 1024)),
        metavar="N",
        help="request body bytes the server holds at once, across all requests (a body is "
        "read whole, and one whose key is in its JSON before its key is checked); a body "
        "that does not fit now is a 503 with Retry-After, one larger than N a 413; 0: no "
        "bound (default $PROMPTRUN_MAX_INFLIGHT_BODY_BYTES, else 134217728: 128 MiB)",
    )
    serve.add_argument(
        "--fault-injection",
        action="store_true",
        help="enable /promptrun/v1/_faults (make chosen paths fail; for testing clients)",
    )
    limits = serve.add_argument_group(
        "connections",
        "Limits that keep clients which open connections and never finish a request (or sit "
        "on idle ones) from using up the server's file descriptors.",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive_int,
        default=1000,
        help="open client connections at most (default 1000; lowered at start to fit the "
        "open-files limit, ulimit -n). Over it, a new connection replaces the one that has "
        "waited longest without a request in progress",
    )
    limits.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="time to send a request's line and headers (default 10)",
    )
    limits.add_argument(
        "--body-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="time to send a request's body, else 408 (default 30)",
    )
    limits.add_argument(
        "--keepalive-timeout",
        type=_positive_float,
        default=15.0,
        metavar="SECONDS",
        help="time an idle keep-alive connection stays open between requests (default 15)",
    )
    rendering = serve.add_argument_group(
        "rendering",
        "The budget of each template rendering the server does for a caller (prompt-template "
        "fetches with input_variables, workflow prompt and conditional nodes); it runs off the "
        "event loop, and past the budget the request fails with a 422 that names the budget.",
    )
    rendering.add_argument(
        "--render-timeout",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="time one rendering may take (default 1)",
    )
    rendering.add_argument(
        "--render-max-chars",
        type=_positive_int,
        default=16_000_000,
        metavar="N",
        help="characters one rendering may build, output and intermediate strings "
        "(default 16000000)",
    )
    serve.add_argument(
        "--max-pending-spans",
        type=_positive_int,
        default=100_000,
        metavar="N",
        help="OpenTelemetry spans received on /v1/traces and not yet stored, at most "
        "(default 100000); past it exporters are told to retry (429 for one workspace "
        "holding half of it, 503 for the server)",
    )
    serve.add_argument(
        "--tool-url",
        action="append",
        default=[],
        metavar="URL",
        help="let workflow tool nodes call this origin (scheme://host[:port][/path], "
        "repeatable), whatever its addresses; '*' allows any host whose addresses are all "
        "public. By default tool nodes call nothing",
    )
    serve.add_argument(
        "--execution-lease",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="a running workflow execution's lease, renewed every third of it: if its server "
        "process dies, another process on the database (or this one, restarted) marks it "
        "failed once the lease ends (default 30)",
    )
    serve.add_argument(
        "--no-native-transport",
        action="store_true",
        help="workflow prompt nodes and the dashboard's playground call providers through "
        "their SDKs rather than promptrun's native transports (as "
        "PromptLayer(native_transport=False) does for a client)",
    )
    code = serve.add_argument_group(
        "code nodes",
        "Workflow code nodes run in a bubblewrap sandbox (namespaces, no network, no host "
        "files, limits); a server that cannot make one refuses them.",
    )
    code.add_argument(
        "--bwrap",
        metavar="PATH",
        help="the bwrap binary for code nodes (default: $PROMPTRUN_BWRAP, else bwrap on the PATH)",
    )
    code.add_argument(
        "--unsafe-code-nodes",
        action="store_true",
        help="run code nodes WITHOUT the sandbox (a child process with an audit hook): anyone "
        "who can publish a workflow can then run code as this server's user",
    )
    code.add_argument(
        "--code-node-slots",
        type=_positive_int,
        metavar="N",
        help="code nodes running at once (default: two per CPU)",
    )
    code.add_argument(
        "--code-node-workspace-slots",
        type=_positive_int,
        metavar="N",
        help="code nodes running at once for one workspace; fewer than --code-node-slots "
        "(default: half of them)",
    )
    code.add_argument(
        "--code-node-max-timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="the longest timeout a code node may ask for, its wait for a slot included "
        "(default 60)",
    )
    serve.set_defaults(run=_serve, command_name="serve")


def _serve(args: argparse.Namespace) -> int:
    from promptrun.server.app import ServerConfig
    from promptrun.server.auth import parse_key_spec
    from promptrun.server.run import run_server
    from promptrun.server.store._pg_url import is_postgres_url

    # --api-key, else the environment: an exported key meant for another server must not
    # quietly become valid on this one too.
    keys: list[str] = list(args.api_key)
    key_source = "--api-key"
    env_key = os.environ.get("PROMPTLAYER_API_KEY")
    if not keys and env_key:
        keys, key_source = [env_key], "PROMPTLAYER_API_KEY"
    for spec in keys:
        try:
            parse_key_spec(spec)
        except ValueError as exc:
            print(f"promptrun serve: error: {exc}", file=sys.stderr)
            return 2
    from promptrun.workflows._code_sandbox import CodeNodeSettings, default_slots
    from promptrun.workflows._destinations import ToolPolicy

    try:
        ToolPolicy(tuple(args.tool_url))
    except ValueError as exc:
        print(f"promptrun serve: error: {exc}", file=sys.stderr)
        return 2

    slots, workspace_slots = args.code_node_slots, args.code_node_workspace_slots
    total = slots or default_slots()
    if workspace_slots is not None and 1 < total <= workspace_slots:
        print(
            f"promptrun serve: error: --code-node-workspace-slots must be less than the "
            f"{total} code-node slots (--code-node-slots), so that one workspace cannot "
            "hold every slot",
            file=sys.stderr,
        )
        return 2
    postgres = args.db is not None and is_postgres_url(args.db)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        db_path=_db_path(args.db, postgres),
        database_url=args.db if postgres else None,
        db_connections=args.db_connections,
        api_keys=tuple(keys),
        key_source=key_source,
        sandbox=not args.no_sandbox,
        sandbox_latency_ms=args.sandbox_latency_ms,
        sandbox_chunks=args.sandbox_chunks,
        max_body_bytes=args.max_body_bytes,
        max_record_bytes=args.max_record_bytes,
        max_inflight_body_bytes=args.max_inflight_body_bytes,
        fault_injection=args.fault_injection,
        tool_urls=tuple(args.tool_url),
        code_nodes=CodeNodeSettings(
            bwrap=args.bwrap,
            unsafe=args.unsafe_code_nodes,
            slots=slots,
            workspace_slots=workspace_slots,
            max_timeout=args.code_node_max_timeout,
        ),
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        render_timeout=args.render_timeout,
        render_max_chars=args.render_max_chars,
        max_pending_spans=args.max_pending_spans,
        execution_lease=args.execution_lease,
        native_transport=not args.no_native_transport,
    )
    return run_server(config)


def _db_path(given: str | None, postgres: bool) -> Path:
    from promptrun._cli._common import EXIT_USAGE, CliError
    from promptrun.server._datadir import DB_NAME, default_db

    if postgres:
        return Path(DB_NAME)  # unused: the database is the URL
    if given is not None:
        return Path(given)
    if Path(DB_NAME).is_file():  # where earlier versions kept it
        print(
            f"promptrun serve: note: ./{DB_NAME} here is not used: the database now lives in "
            f"your data folder; pass --db {DB_NAME} to serve this one",
            file=sys.stderr,
        )
    try:
        return default_db()
    except OSError as exc:
        raise CliError(
            f"cannot make the data folder for the database ({exc}); pass --db PATH", EXIT_USAGE
        ) from None


def _parser() -> argparse.ArgumentParser:
    from promptrun._cli import (
        _keys,
        _logs,
        _prompt_run,
        _quickstart,
        _templates,
        _traces,
        _workflows,
    )
    from promptrun._version import __version__

    parser = Parser(
        prog="promptrun",
        description="Run registry prompts and log them; serve the API and a dashboard locally.",
        epilog=(
            "Start here: `promptrun serve`, paste the export lines it prints into another "
            "terminal, then `promptrun quickstart`. "
            "Exit status: 0 done, 1 the server or provider failed, 2 bad usage. "
            "`promptrun COMMAND --help` tells more."
        ),
    )
    parser.add_argument("--version", action="version", version=f"promptrun {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_serve(commands)
    _quickstart.add_parser(commands)
    _prompt_run.add_parser(commands)
    _templates.add_parser(commands)
    _logs.add_parser(commands)
    _workflows.add_parser(commands)
    _traces.add_parser(commands)
    _keys.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return its exit status."""
    from promptrun._cli._common import CliError
    from promptrun._cli._output import clean
    from promptrun._errors import PromptLayerError

    parser = _parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    where = " ".join(a for a in (parser.prog, getattr(args, "command_name", None)) if a)
    try:
        status: int = run(args)
    except CliError as exc:
        print(f"{where}: error: {clean(exc.message)}", file=sys.stderr)
        return exc.status
    except PromptLayerError as exc:
        print(f"{where}: error: {clean(exc.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status
