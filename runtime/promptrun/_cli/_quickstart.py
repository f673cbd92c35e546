"""``promptrun quickstart``: from an empty server to a first logged run, in one command.

Publishes the example templates shipped inside promptrun (``promptrun.examples``: greet on
OpenAI, haiku on Anthropic, summarize on Gemini; unchanged ones make no new version), runs
``greet`` once with the provider settings of this shell (the export lines ``promptrun serve``
prints point them at its sandbox), and says where the run is logged and what to try next.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from promptrun._cli import _prompt_run, _push
from promptrun._cli._common import EXIT_FAILURE, EXIT_OK, Commands, add_connection, connection
from promptrun._cli._output import dashboard_url

__all__ = ["FIRST_RUN", "add_parser"]

#: The run quickstart makes, as ``promptrun run`` options.
FIRST_RUN = ("greet", {"name": "Ada", "topic": "the analytical engine"})


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "quickstart",
        help="publish the example templates and make a first logged run",
        description=(
            "Publish the example templates shipped with promptrun (greet, haiku, summarize; "
            "an unchanged one makes no new version), run greet once with this shell's "
            "provider settings, and print the answer and where it is logged. Against "
            "`promptrun serve`, paste the export lines it prints first."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    add_connection(parser)
    parser.set_defaults(run=run_command, command_name="quickstart")


def run_command(args: argparse.Namespace) -> int:
    push = argparse.Namespace(
        paths=[], examples=True, force=False, json=args.json,
        base_url=args.base_url, api_key=args.api_key,
    )  # fmt: skip
    if asyncio.run(_push.push_command(push)) != EXIT_OK:
        return EXIT_FAILURE
    name, variables = FIRST_RUN
    if not args.json:
        print(f"\nrunning {name} ({', '.join(f'{k}={v}' for k, v in variables.items())}):")
    run = argparse.Namespace(
        name=name, version=None, label="prod",
        var=[f"{k}={v}" for k, v in variables.items()], var_json=[], metadata=[],
        tag=["quickstart"], provider=None, model=None, stream=False, json=args.json,
        base_url=args.base_url, api_key=args.api_key,
    )  # fmt: skip
    status = _prompt_run.run_command(run)
    if status == EXIT_OK and not args.json:
        base_url, _ = connection(args)
        dashboard = dashboard_url(base_url, "/")
        print(
            "\nnext:\n"
            "  promptrun run haiku --var subject=autumn --stream\n"
            "  promptrun logs\n" + (f"  the dashboard: {dashboard}\n" if dashboard else ""),
            file=sys.stderr,
        )
    return status
