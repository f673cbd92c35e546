"""``promptrun templates label NAME [LABEL]``: promote, roll back, remove or list release labels.

Moving a label publishes nothing: ``promptrun templates label greet prod --version 3`` puts
``prod`` on version 3 (creating the label, or moving it from where it was), which is how a
tested version is promoted and how a bad one is rolled back. The PromptLayer API's label
endpoints do the work: ``POST /prompts/{name}/label``, ``DELETE /prompt-labels/{id}`` and
``GET /prompt-templates/{name}/labels``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from promptrun._cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    add_connection,
    open_api,
    print_json,
)
from promptrun._http import segment

__all__ = ["add_label_parser"]


def add_label_parser(sub: Commands) -> None:
    """``templates label``, under the ``templates`` command's subcommands."""
    label = sub.add_parser(
        "label",
        help="move a release label to a version (promote, roll back), remove it, or list them",
        description=(
            "Put LABEL on a version without publishing: it is created, or moved from the\n"
            "version it is on. Without LABEL, list the template's labels."
        ),
        epilog=(
            "examples: promptrun templates label greet prod --version 3   (promote)\n"
            "          promptrun templates label greet prod --version 2   (roll back)\n"
            "          promptrun templates label greet canary --remove\n"
            "          promptrun templates label greet"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    label.add_argument("name", help="the template's name (or id)")
    label.add_argument("label", nargs="?", help="the release label, e.g. prod")
    what = label.add_mutually_exclusive_group()
    what.add_argument("--version", type=int, metavar="N", help="put the label on version N")
    what.add_argument("--remove", action="store_true", help="remove the label")
    label.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    add_connection(label)
    label.set_defaults(run=_run, command_name="templates label")


def _run(args: argparse.Namespace) -> int:
    if args.label is None and (args.version is not None or args.remove):
        raise CliError(
            "name the label to move or remove, e.g. `... greet prod --version 3`", EXIT_USAGE
        )
    if args.label is not None and args.version is None and not args.remove:
        raise CliError(
            f"say where {args.label!r} goes: --version N (or --remove to remove it)", EXIT_USAGE
        )
    if args.version is not None and args.version < 1:
        raise CliError(f"--version {args.version}: versions are numbered from 1", EXIT_USAGE)
    status: int = asyncio.run(_labels(args))
    return status


async def _labels(args: argparse.Namespace) -> int:
    ref = segment(args.name)
    async with open_api(args) as api:
        if args.label is None:
            listed = await api.request(
                "GET", f"/prompt-templates/{ref}/labels",
                context=f"listing the labels of {args.name!r}",
            )  # fmt: skip
            _print_list(args, listed)
            return EXIT_OK
        if args.remove:
            listed = await api.request(
                "GET", f"/prompt-templates/{ref}/labels",
                context=f"listing the labels of {args.name!r}",
            )  # fmt: skip
            found = [x for x in listed["release_labels"] if x["release_label"] == args.label]
            if not found:
                names = ", ".join(x["release_label"] for x in listed["release_labels"]) or "none"
                raise CliError(f"{args.name!r} has no label {args.label!r}; its labels: {names}")
            answer = await api.request(
                "DELETE", f"/prompt-labels/{found[0]['release_label_id']}",
                context=f"removing {args.label!r} from {args.name!r}",
            )  # fmt: skip
        else:
            answer = await api.request(
                "POST", f"/prompts/{ref}/label",
                body={"name": args.label, "prompt_version_number": args.version},
                context=f"putting {args.label!r} on {args.name!r} version {args.version}",
            )  # fmt: skip
    if args.json:
        print_json(answer)
    else:
        print(_sentence(answer))
    return EXIT_OK


def _sentence(answer: dict[str, Any]) -> str:
    name, label = answer["prompt_name"], answer["name"]
    now, before = answer["prompt_version_number"], answer["previous_version_number"]
    if answer.get("removed"):
        return f"{name}: removed {label} (it was on v{now})"
    if before is None:
        return f"{name}: {label} is now on v{now} (new label)"
    if before == now:
        return f"{name}: {label} was already on v{now}"
    return f"{name}: moved {label} from v{before} to v{now}"


def _print_list(args: argparse.Namespace, listed: dict[str, Any]) -> None:
    if args.json:
        print_json(listed)
        return
    labels = listed["release_labels"]
    if not labels:
        print(f"{listed['prompt_name']} has no release labels")
        return
    width = max(5, *(len(x["release_label"]) for x in labels))
    print(f"{'LABEL':<{width}}  VERSION")
    for x in labels:
        print(f"{x['release_label']:<{width}}  v{x['prompt_version_number']}")
