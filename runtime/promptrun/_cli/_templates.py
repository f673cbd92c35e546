"""``promptrun templates push | pull | list | show``: the prompt registry from the shell.

Files are publish bodies, as ``templates.publish()`` takes them: ``prompt_name``,
``prompt_template``, and optionally ``commit_message``, ``metadata``, ``tags`` and
``release_labels``. JSON always; YAML when PyYAML is installed. A file may hold one body or a
list of them (YAML: also several documents).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from promptrun._cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Progress,
    add_connection,
    open_api,
    print_json,
)

__all__ = ["add_parser", "load_bodies", "wire_body"]

_SUFFIXES = (".json", ".yaml", ".yml")
_YAML = (".yaml", ".yml")
_NO_YAML = "YAML needs PyYAML, which is not installed (pip install pyyaml); or use JSON"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
            "Publish each file (or each .json/.yaml/.yml file under a folder) as a new version. "
            "A file holds a publish body or a list of them: prompt_name, prompt_template, and "
            "optionally commit_message, metadata, tags, release_labels."
        ),
    )
    push.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    push.add_argument("--json", action="store_true", help="print one JSON result per template")
    add_connection(push)
    push.set_defaults(run=_sync(_push), command_name="templates push")

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
    which.add_argument("--version", type=int, metavar="N", help="this version (default: latest)")
    which.add_argument("--label", help="the version this release label is on")


def _sync(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        status: int = asyncio.run(command(args))
        return status

    return run


# -- push ------------------------------------------------------------------------------------


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
            )
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"no such file or folder: {raw}", EXIT_USAGE)
    if not found:
        raise CliError("no .json, .yaml or .yml files in " + ", ".join(paths), EXIT_USAGE)
    return found


def load_bodies(path: Path) -> list[dict[str, Any]]:
    """The publish bodies in one file; ValueError says what is wrong with it."""
    text = path.read_text(encoding="utf-8")
    documents: list[Any]
    if path.suffix in _YAML:
        try:
            import yaml
        except ImportError:
            raise ValueError(_NO_YAML) from None
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from None
    else:
        try:
            documents = [json.loads(text)]
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    bodies: list[dict[str, Any]] = []
    for document in documents:
        for body in document if isinstance(document, list) else [document]:
            if not isinstance(body, dict):
                raise ValueError(
                    "each template must be an object with prompt_name and prompt_template"
                )
            bodies.append(body)
    if not bodies:
        raise ValueError("the file holds no template")
    return bodies


def wire_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A file's body as ``POST /rest/prompt-templates`` takes it, and the template's name.

    The flat form of ``templates.publish()`` is converted; the API's own nested form
    (``prompt_template`` + ``prompt_version``) is sent as it is.
    """
    if isinstance(body.get("prompt_version"), dict) and isinstance(
        body.get("prompt_template"), dict
    ):
        name = body["prompt_template"].get("prompt_name")
        if not isinstance(name, str) or not name:
            raise ValueError("prompt_template.prompt_name is missing")
        return name, body
    name = body.get("prompt_name")
    if not isinstance(name, str) or not name:
        raise ValueError("prompt_name is missing")
    if not isinstance(body.get("prompt_template"), dict):
        raise ValueError(f"{name}: prompt_template must be an object")
    unknown = set(body) - {
        "prompt_name", "prompt_template", "commit_message", "metadata", "tags",
        "release_labels", "folder_id",
    }  # fmt: skip
    if unknown:
        raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
    template_part = {k: body[k] for k in ("prompt_name", "tags", "folder_id") if k in body}
    version_part = {
        k: body[k] for k in ("prompt_template", "commit_message", "metadata") if k in body
    }
    wire: dict[str, Any] = {"prompt_template": template_part, "prompt_version": version_part}
    if body.get("release_labels") is not None:
        wire["release_labels"] = body["release_labels"]
    return name, wire


async def _push(args: argparse.Namespace) -> int:
    from promptrun._errors import PromptLayerError

    files = _files(args.paths)
    work: list[tuple[Path, Any]] = []
    failed = 0
    for path in files:
        try:
            work.extend((path, wire_body(body)) for body in load_bodies(path))
        except (ValueError, OSError) as exc:
            failed += 1
            _report(args, {"file": str(path), "error": str(exc)}, f"{path}: {exc}", error=True)
    progress = Progress(len(work))
    async with open_api(args) as api:
        for done, (path, (name, wire)) in enumerate(work, 1):
            progress.step(done, f"pushing {name} ({path.name})")
            try:
                stored = await api.request(
                    "POST", "/rest/prompt-templates", body=wire,
                    context=f"publishing {name!r}", expect=(200, 201),
                )  # fmt: skip
            except PromptLayerError as exc:
                failed += 1
                progress.clear()
                _report(args, {"file": str(path), "prompt_name": name, "error": exc.message},
                        f"{path}: {exc.message}", error=True)  # fmt: skip
                continue
            progress.clear()
            number = stored.get("version_number")
            labels = stored.get("release_labels") or []
            line = f"pushed {name} v{number}" + (f" [{', '.join(labels)}]" if labels else "")
            _report(
                args,
                {
                    "file": str(path),
                    "prompt_name": name,
                    "version": number,
                    "release_labels": labels,
                },
                line,
            )
    progress.clear()
    if failed:
        print(f"promptrun templates push: {failed} failed", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _report(
    args: argparse.Namespace, data: dict[str, Any], line: str, *, error: bool = False
) -> None:
    if args.json:
        print_json(data)
    elif error:
        print(f"promptrun templates push: error: {line}", file=sys.stderr)
    else:
        print(line, flush=True)


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
            f"/prompt-templates/{quote(args.name, safe='')}",
            body=body,
            context=f"fetching prompt template {args.name!r}",
        )
    return fetched


def _publish_body(fetched: dict[str, Any]) -> dict[str, Any]:
    body = {
        "prompt_name": fetched.get("prompt_name"),
        "prompt_template": fetched.get("prompt_template"),
        "metadata": fetched.get("metadata") or {},
        "commit_message": fetched.get("commit_message"),
        "tags": fetched.get("tags") or [],
        "release_labels": fetched.get("release_labels") or [],
    }
    return {k: v for k, v in body.items() if v is not None}


def _dump(body: dict[str, Any], fmt: str) -> str:
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:
            raise CliError(_NO_YAML, EXIT_FAILURE) from None
        return str(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


async def _pull(args: argparse.Namespace) -> int:
    fmt = args.format or ("yaml" if args.output and args.output.suffix in _YAML else "json")
    fetched = await _fetch(args)
    text = _dump(_publish_body(fetched), fmt)
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
    print(f"{fetched.get('prompt_name')} v{fetched.get('version')}  labels: {labels}")
    if fetched.get("commit_message"):
        print(f"commit: {fetched['commit_message']}")
    if model:
        print(
            f"model: {model.get('provider')}/{model.get('name')}  {json.dumps(model.get('parameters') or {})}"
        )
    template = fetched.get("prompt_template") or {}
    for message in template.get("messages") or [
        {"role": "prompt", "content": template.get("content")}
    ]:
        texts = [
            p.get("text", "")
            for p in message.get("content") or ()
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        print(f"\n[{message.get('role')}]")
        print("\n".join(texts))
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
    width = max(len(str(item.get("prompt_name"))) for item in items)
    for item in items:
        labels = ",".join(item.get("release_labels") or []) or "-"
        print(f"{item.get('prompt_name')!s:<{width}}  v{item.get('version')!s:<4} {labels}")
    return EXIT_OK
