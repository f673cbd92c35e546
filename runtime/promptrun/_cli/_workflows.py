"""``promptrun workflows run NAME``: run a workflow and print its output."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from promptrun._cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_connection,
    add_inputs,
    connection,
    parse_pairs,
    print_json,
)

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "workflows", help="run and push workflows", description="Run and publish workflows."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a workflow and print its output",
        description=(
            "Run a workflow (on the server by default, or here with --local) and print the "
            "value of its output node; --all-outputs prints every node's result."
        ),
        epilog="example: promptrun workflows run triage --var ticket='My order is late'",
    )
    run.add_argument("name", help="the workflow's name (or id)")
    add_inputs(run, "workflow", "workflow")
    run.add_argument(
        "--all-outputs", action="store_true", help="every node's status, value and error"
    )
    run.add_argument("--local", action="store_true", help="run the engine in this process")
    run.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="give up after this long (default 3600)",
    )
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    add_connection(run)
    run.set_defaults(run=run_command, command_name="workflows run")
    from promptrun._cli._workflow_push import add_push_parser

    add_push_parser(sub)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


async def _execute(args: argparse.Namespace) -> Any:
    from promptrun import AsyncPromptLayer, PromptLayerValidationError
    from promptrun._workflow_api import run_workflow

    base_url, api_key = connection(args)
    variables = {
        **parse_pairs(args.var, "--var"),
        **parse_pairs(args.var_json, "--var-json", as_json=True),
    }
    metadata = parse_pairs(args.metadata, "--metadata")
    ref: int | str = int(args.name) if args.name.isascii() and args.name.isdigit() else args.name
    try:
        async with AsyncPromptLayer(api_key=api_key, base_url=base_url) as client:
            return await run_workflow(
                client,
                ref,
                input_variables=variables,
                metadata=metadata or None,
                workflow_label_name=args.label,
                workflow_version=args.version,
                return_all_outputs=args.all_outputs,
                timeout=args.timeout,
                execution="local" if args.local else "server",
            )
    except PromptLayerValidationError as exc:
        raise CliError(exc.message, EXIT_USAGE) from None


def _print(result: Any, args: argparse.Namespace) -> None:
    if args.json:
        print_json(result)
    elif args.all_outputs and isinstance(result, dict):
        for name, node in result.items():
            mark = "*" if node.get("is_output_node") else " "
            detail = (
                node.get("error_message") if node.get("status") != "SUCCESS" else node.get("value")
            )
            print(f"{mark} {name}: {node.get('status')}  {_text(detail)}")
    else:
        print(_text(result))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def run_command(args: argparse.Namespace) -> int:
    import asyncio

    result = asyncio.run(_execute(args))
    _print(result, args)
    return EXIT_OK
