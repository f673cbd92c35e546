"""``promptrun templates push | pull | list | show``: the prompt registry from the shell.

Files are publish bodies (see :mod:`promptrun._cli._push`, which pushes them idempotently).
``pull`` writes a version as such a file, leaving its release labels out unless asked
(``--with-labels``), so pull, edit, push never moves ``prod`` by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from promptrun._cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    add_connection,
    connection,
    open_api,
    print_json,
    whole_number,
)
from promptrun._cli._output import Column, Table, clean, dashboard_url, message_lines
from promptrun._cli._push import NO_YAML, YAML_SUFFIXES, push_command
from promptrun._http import segment

__all__ = ["add_parser"]


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "templates",
        help="push, pull, list and show prompt templates",
        description="Work with the prompt registry.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    push = sub.add_parser(
        "push",
        help="publish templates from JSON or YAML files",
        description=(
            "Publish each file (or each .json/.yaml/.yml file under a folder) as a new version, "
            "unless it equals the latest version (then it says 'unchanged'). A file holds a "
            "publish body or a list of them: prompt_name, prompt_template, and optionally "
            "commit_message, metadata, tags, release_labels."
        ),
        epilog="example: promptrun templates push prompts/  (or --examples: the shipped ones)",
    )
    push.add_argument("paths", nargs="*", metavar="FILE_OR_DIR")
    push.add_argument(
        "--examples",
        action="store_true",
        help="push the example templates shipped with promptrun (greet, haiku, summarize)",
    )
    push.add_argument(
        "--force", action="store_true", help="publish a new version even when unchanged"
    )
    push.add_argument("--json", action="store_true", help="print one JSON result per template")
    add_connection(push)
    push.set_defaults(run=_sync(push_command), command_name="templates push")

    pull = sub.add_parser(
        "pull",
        help="save a template version as a publish body",
        description="Write a version as a file that `templates push` publishes again.",
    )
    pull.add_argument("name")
    _add_which(pull)
    pull.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    pull.add_argument(
        "--format", choices=("json", "yaml"), help="default: from the file's suffix, else json"
    )
    pull.add_argument(
        "--with-labels",
        action="store_true",
        help="keep the version's release labels in the file (pushing it then moves them)",
    )
    add_connection(pull)
    pull.set_defaults(run=_sync(_pull), command_name="templates pull")

    listing = sub.add_parser("list", help="list the registry's templates")
    listing.add_argument("--label", help="only templates with this release label, at its version")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_connection(listing)
    listing.set_defaults(run=_sync(_list), command_name="templates list")

    show = sub.add_parser("show", help="print one template version")
    show.add_argument("name")
    _add_which(show)
    show.add_argument("--json", action="store_true", help="print the version as JSON")
    add_connection(show)
    show.set_defaults(run=_sync(_show), command_name="templates show")

    from promptrun._cli._labels import add_label_parser

    add_label_parser(sub)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _add_which(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--version", type=whole_number(1), metavar="N", help="this version (default: latest)"
    )
    which.add_argument("--label", help="the version this release label is on")


def _sync(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        status: int = asyncio.run(command(args))
        return status

    return run


# -- pull, show, list ------------------------------------------------------------------------


async def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.version is not None:
        body["version"] = args.version
    if args.label:
        body["label"] = args.label
    async with open_api(args) as api:
        fetched: dict[str, Any] = await api.request(
            "POST",
            f"/prompt-templates/{segment(args.name)}",
            body=body,
            context=f"fetching prompt template {args.name!r}",
        )
    return fetched


def _publish_body(fetched: dict[str, Any], with_labels: bool) -> dict[str, Any]:
    body = {
        "prompt_name": fetched.get("prompt_name"),
        "prompt_template": fetched.get("prompt_template"),
        "metadata": fetched.get("metadata") or {},
        "commit_message": fetched.get("commit_message"),
        "tags": fetched.get("tags") or [],
        "release_labels": (fetched.get("release_labels") or []) if with_labels else None,
    }
    return {k: v for k, v in body.items() if v is not None}


def _dump(body: dict[str, Any], fmt: str) -> str:
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:
            raise CliError(NO_YAML, EXIT_FAILURE) from None
        return str(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


async def _pull(args: argparse.Namespace) -> int:
    fmt = args.format or ("yaml" if args.output and args.output.suffix in YAML_SUFFIXES else "json")
    fetched = await _fetch(args)
    text = _dump(_publish_body(fetched, args.with_labels), fmt)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(
            f"wrote {fetched.get('prompt_name')} v{fetched.get('version')} to {args.output}",
            file=sys.stderr,
        )
    return EXIT_OK


async def _show(args: argparse.Namespace) -> int:
    fetched = await _fetch(args)
    if args.json:
        print_json(fetched)
        return EXIT_OK
    model = (fetched.get("metadata") or {}).get("model") or {}
    labels = ", ".join(fetched.get("release_labels") or []) or "-"
    print(clean(f"{fetched.get('prompt_name')} v{fetched.get('version')}  labels: {labels}"))
    if fetched.get("commit_message"):
        print(clean(f"commit: {fetched['commit_message']}"))
    if model:
        parameters = json.dumps(model.get("parameters") or {})
        print(clean(f"model: {model.get('provider')}/{model.get('name')}  {parameters}"))
    base_url, _ = connection(args)
    url = dashboard_url(
        base_url, "/prompt", {"name": fetched.get("prompt_name"), "version": fetched.get("version")}
    )
    if url:
        print(f"dashboard: {clean(url)}")
    for line in message_lines(fetched.get("prompt_template")):
        print(f"\n{line}" if line.startswith("[") else line)
    return EXIT_OK


async def _list(args: argparse.Namespace) -> int:
    items: list[dict[str, Any]] = []
    async with open_api(args) as api:
        page = 1
        while True:
            params = {"page": str(page), "per_page": "100"}
            if args.label:
                params["label"] = args.label
            answer = await api.request(
                "GET", "/prompt-templates", params=params, context="listing templates"
            )
            batch = answer.get("items") or []
            items.extend(batch)
            if not batch or len(items) >= int(answer.get("total") or 0):
                break
            page += 1
    if args.json:
        print_json([
            {k: item.get(k) for k in ("prompt_name", "version", "release_labels", "tags", "commit_message")}
            for item in items
        ])  # fmt: skip
        return EXIT_OK
    if not items:
        print("no templates", file=sys.stderr)
        return EXIT_OK
    table = Table((Column("NAME"), Column("VERSION", right=True), Column("MODEL"),
                   Column("LABELS"), Column("COMMIT")))  # fmt: skip
    table.print([_list_row(item) for item in items])
    return EXIT_OK


def _list_row(item: dict[str, Any]) -> list[str]:
    model = (item.get("metadata") or {}).get("model") or {}
    commit = str(item.get("commit_message") or "").splitlines()
    return [
        str(item.get("prompt_name")),
        f"v{item.get('version')}",
        f"{model.get('provider')}/{model.get('name')}" if model else "-",
        ",".join(item.get("release_labels") or []) or "-",
        (commit[0][:60] if commit else "") or "-",
    ]
