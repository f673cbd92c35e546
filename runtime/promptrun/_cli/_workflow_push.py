"""``promptrun workflows push FILE``: publish a workflow version from a JSON file.

The file holds a definition (``{"nodes": [...], ...}``, the format of
:mod:`promptrun.workflows`) or a whole publish body (``{"workflow_name", "definition",
"commit_message"?, "release_labels"?}``). The name is ``--name``, else the body's
``workflow_name``, else the file's name without its suffix. The server checks the
definition and says what is wrong with it, as ``POST /rest/workflows`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from promptrun._cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    add_connection,
    open_api,
    print_json,
)
from promptrun.wire.workflows import publish_body_of

__all__ = ["add_push_parser"]


def add_push_parser(sub: Commands) -> None:
    """``workflows push``, under the ``workflows`` command's subcommands."""
    push = sub.add_parser(
        "push",
        help="publish a workflow version from a JSON file",
        description=(
            "Publish FILE as a new version of a workflow. FILE holds a definition "
            '({"nodes": [...]}) or a publish body ({"workflow_name", "definition", ...}).'
        ),
        epilog="example: promptrun workflows push triage.json --label prod -m 'stricter check'",
    )
    push.add_argument("file", type=Path, metavar="FILE")
    push.add_argument("--name", help="the workflow's name (default: from the file)")
    push.add_argument("-m", "--message", metavar="TEXT", help="the version's commit message")
    push.add_argument(
        "--label", action="append", default=[], metavar="LABEL",
        help="a release label to move to the new version (repeatable)",
    )  # fmt: skip
    push.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    add_connection(push)
    push.set_defaults(run=_run, command_name="workflows push")


def _run(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise CliError(f"no such file: {path}", EXIT_USAGE)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        body = publish_body_of(
            document,
            name=args.name,
            message=args.message,
            labels=args.label,
            default_name=path.stem,
        )
    except (ValueError, OSError) as exc:
        raise CliError(f"{path}: {exc}", EXIT_FAILURE) from None
    answer = asyncio.run(_publish(args, body))
    if args.json:
        print_json(answer)
        return EXIT_OK
    workflow = answer.get("workflow") or {}
    labels = workflow.get("release_labels") or []
    tail = f" [{', '.join(labels)}]" if labels else ""
    print(f"pushed {workflow.get('name')} v{answer.get('version_number')}{tail}")
    return EXIT_OK


async def _publish(args: argparse.Namespace, body: dict[str, Any]) -> Any:
    async with open_api(args) as api:
        return await api.request(
            "POST", "/rest/workflows", body=body, expect=(201,),
            context=f"{args.file}: publishing workflow {body['workflow_name']!r}",
        )  # fmt: skip
