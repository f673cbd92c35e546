"""``promptrun workflows run NAME``: run a workflow and print its output.

On the server, the execution's id and its dashboard page are printed (stderr) as soon as it
starts, and on a terminal a progress line follows its nodes. ``--all-outputs`` prints every
node and exits 1 when an output node did not succeed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from promptrun._cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    add_connection,
    add_inputs,
    connection,
    number,
    open_api,
    parse_pairs,
    print_json,
)
from promptrun._cli._output import clean, colour_enabled, dashboard_url, paint, status_colour

_POLL = 0.5

__all__ = ["add_parser"]


def add_parser(commands: Commands) -> None:
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
        type=number(0, above=True, what="a number of seconds"),
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
    import anyio

    from promptrun import AsyncPromptLayer, PromptLayerValidationError
    from promptrun._workflow_api import run_workflow

    base_url, api_key = connection(args)
    variables = {
        **parse_pairs(args.var, "--var"),
        **parse_pairs(args.var_json, "--var-json", as_json=True),
    }
    metadata = parse_pairs(args.metadata, "--metadata")
    ref: int | str = int(args.name) if args.name.isascii() and args.name.isdigit() else args.name
    progress = _Progress(base_url)
    result: Any = None
    failure: Exception | None = None
    async with (
        AsyncPromptLayer(api_key=api_key, base_url=base_url) as client,
        anyio.create_task_group() as tasks,
    ):

        def started(execution_id: int) -> None:
            progress.started(execution_id)
            if progress.shown:
                tasks.start_soon(progress.follow, args, execution_id)

        try:
            result = await run_workflow(
                client,
                ref,
                input_variables=variables,
                metadata=metadata or None,
                workflow_label_name=args.label,
                workflow_version=args.version,
                return_all_outputs=args.all_outputs,
                timeout=args.timeout,
                execution="local" if args.local else "server",
                on_execution=started,
            )
        except Exception as exc:  # raised below, outside the task group (not in a group)
            failure = exc
        finally:
            tasks.cancel_scope.cancel()
            progress.clear()
    if isinstance(failure, PromptLayerValidationError):
        raise CliError(failure.message, EXIT_USAGE) from None
    if failure is not None:
        raise failure
    return result


class _Progress:
    """The execution's id and page at its start; then, on a terminal, one rewritten line with
    the nodes finished so far."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._stream = sys.stderr
        self.shown = self._stream.isatty()
        self._width = 0

    def started(self, execution_id: int) -> None:
        url = dashboard_url(self._base_url, f"/workflows/executions/{execution_id}")
        self._stream.write(f"execution #{execution_id}" + (f": {url}" if url else "") + "\n")
        self._stream.flush()

    async def follow(self, args: argparse.Namespace, execution_id: int) -> None:
        import anyio

        from promptrun._errors import PromptLayerError

        async with open_api(args, timeout=5) as api:
            while True:
                await anyio.sleep(_POLL)
                try:
                    view = await api.request(
                        "GET", f"/promptrun/v1/workflow-executions/{execution_id}",
                        context="reading the execution's progress",
                    )  # fmt: skip
                except PromptLayerError:
                    return  # a server without promptrun's execution API: no progress line
                self._step(view)

    def _step(self, view: dict[str, Any]) -> None:
        nodes = [n for n in view.get("nodes") or () if isinstance(n, dict)]
        done = [n for n in nodes if n.get("status") not in ("RUNNING", "QUEUED", None)]
        last = f", last: {done[-1].get('name')} {done[-1].get('status')}" if done else ""
        self._show(f"[{view.get('status')}] {len(done)} node(s) finished{last}")

    def _show(self, line: str) -> None:
        line = line[:120]
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def _failed_outputs(result: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(result, dict):
        return []
    return [
        (name, node)
        for name, node in result.items()
        if isinstance(node, dict) and node.get("is_output_node") and node.get("status") != "SUCCESS"
    ]


def _print(result: Any, args: argparse.Namespace) -> None:
    if args.json:
        print_json(result)
    elif args.all_outputs and isinstance(result, dict):
        colour = colour_enabled(sys.stdout)
        for name, node in result.items():
            mark = "*" if node.get("is_output_node") else " "
            status = str(node.get("status"))
            detail = node.get("error_message") if status != "SUCCESS" else node.get("value")
            painted = paint(status, status_colour(status), colour)
            print(f"{mark} {clean(str(name))}: {painted}  {clean(_text(detail))}")
    else:
        print(clean(_text(result)))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def run_command(args: argparse.Namespace) -> int:
    import asyncio

    result = asyncio.run(_execute(args))
    _print(result, args)
    failed = _failed_outputs(result) if args.all_outputs else []
    for name, node in failed:
        print(
            clean(
                f"promptrun workflows run: output node {name!r} {node.get('status')}: "
                f"{node.get('error_message')}"
            ),
            file=sys.stderr,
        )
    return EXIT_FAILURE if failed else EXIT_OK
