"""``promptrun templates push``: publish files of publish bodies, idempotently.

Files are publish bodies, as ``templates.publish()`` takes them: ``prompt_name``,
``prompt_template``, and optionally ``commit_message``, ``metadata``, ``tags`` and
``release_labels`` (or the API's own nested form). JSON or YAML; a file may hold one body or a
list of them (YAML: also several documents). A body whose template, metadata and tags equal
the latest version's is reported ``unchanged`` and makes no version, and its release labels stay
where they are; ``--force`` sends it anyway, so the server moves the labels (it still makes no
version for content it already has, and says so).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptrun._cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Progress,
    connection,
    open_api,
    print_json,
)
from promptrun._cli._output import clean, dashboard_url
from promptrun._http import segment

if TYPE_CHECKING:
    from promptrun._http import ApiTransport

__all__ = [
    "NO_YAML",
    "YAML_SUFFIXES",
    "PushResult",
    "load_bodies",
    "push_bodies",
    "push_command",
    "wire_body",
]

_SUFFIXES = (".json", ".yaml", ".yml")
YAML_SUFFIXES = (".yaml", ".yml")
NO_YAML = "YAML needs PyYAML, which is not installed (pip install pyyaml); or use JSON"


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
    if path.suffix in YAML_SUFFIXES:
        try:
            import yaml
        except ImportError:
            raise ValueError(NO_YAML) from None
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


@dataclass(frozen=True, slots=True)
class PushResult:
    """What pushing one body did: a new version, or none because nothing changed."""

    prompt_name: str
    version: int | None
    release_labels: list[str]
    unchanged: bool
    #: A release label the file names that stays where it is (it is on another version).
    not_moved: list[str]

    def line(self, url: str | None) -> str:
        labels = f" [{', '.join(self.release_labels)}]" if self.release_labels else ""
        verb = "unchanged" if self.unchanged else "pushed"
        return f"{verb} {self.prompt_name} v{self.version}{labels}" + (f"  {url}" if url else "")


def _parts(wire: dict[str, Any]) -> tuple[Any, Any, Any, list[str]]:
    """A wire body's template, metadata, tags (None: not given) and release labels."""
    template_part = wire.get("prompt_template") or {}
    version_part = wire.get("prompt_version") or {}
    labels = wire.get("release_labels")
    if labels is None:
        labels = template_part.get("release_labels") or version_part.get("release_labels") or []
    return (
        version_part.get("prompt_template"),
        version_part.get("metadata") or {},
        template_part.get("tags"),
        [str(label) for label in labels],
    )


async def _latest(api: ApiTransport, name: str) -> dict[str, Any] | None:
    from promptrun._errors import PromptLayerNotFoundError

    try:
        found: dict[str, Any] = await api.request(
            "POST", f"/prompt-templates/{segment(name)}", body={},
            context=f"fetching prompt template {name!r}",
        )  # fmt: skip
    except PromptLayerNotFoundError:
        return None
    return found


async def push_bodies(
    api: ApiTransport, name: str, wire: dict[str, Any], *, force: bool = False
) -> PushResult:
    """Publish one wire body, unless the latest version already has its content."""
    template, metadata, tags, labels = _parts(wire)
    latest = None if force else await _latest(api, name)
    if latest is not None and (
        latest.get("prompt_template") == template
        and (latest.get("metadata") or {}) == metadata
        and (tags is None or sorted(latest.get("tags") or []) == sorted(tags))
    ):
        on_latest = list(latest.get("release_labels") or [])
        return PushResult(
            name, latest.get("version"), on_latest, unchanged=True,
            not_moved=[label for label in labels if label not in on_latest],
        )  # fmt: skip
    stored = await api.request(
        "POST", "/rest/prompt-templates", body=wire,
        context=f"publishing {name!r}", expect=(200, 201),
    )  # fmt: skip
    # A server that publishes idempotently (promptrun serve) says when it made no version.
    return PushResult(
        name, stored.get("version_number"), list(stored.get("release_labels") or []),
        unchanged=bool(stored.get("unchanged")), not_moved=[],
    )  # fmt: skip


def _work(args: argparse.Namespace) -> tuple[list[tuple[Path, str, dict[str, Any]]], int]:
    """The bodies to push, by file, and how many files could not be read."""
    if not args.paths and not args.examples:
        raise CliError("name the files or folders to push (or --examples)", EXIT_USAGE)
    files = _files(args.paths) if args.paths else []
    if args.examples:
        from promptrun.examples import template_files

        files.extend(template_files())
    work: list[tuple[Path, str, dict[str, Any]]] = []
    failed = 0
    for path in files:
        try:
            work.extend((path, *wire_body(body)) for body in load_bodies(path))
        except (ValueError, OSError) as exc:
            failed += 1
            _report(args, {"file": str(path), "error": str(exc)}, f"{path}: {exc}", error=True)
    return work, failed


async def push_command(args: argparse.Namespace) -> int:
    """``templates push``: publish what changed, say what did not."""
    from promptrun._errors import PromptLayerError

    work, failed = _work(args)
    base_url, _ = connection(args)
    progress = Progress(len(work))
    async with open_api(args) as api:
        for done, (path, name, wire) in enumerate(work, 1):
            progress.step(done, f"pushing {name} ({path.name})")
            try:
                result = await push_bodies(api, name, wire, force=args.force)
            except PromptLayerError as exc:
                failed += 1
                progress.clear()
                _report(args, {"file": str(path), "prompt_name": name, "error": exc.message},
                        f"{path}: {exc.message}", error=True)  # fmt: skip
                continue
            progress.clear()
            url = dashboard_url(base_url, "/prompt", {"name": name, "version": result.version})
            data = {
                "file": str(path),
                "prompt_name": name,
                "version": result.version,
                "release_labels": result.release_labels,
                "unchanged": result.unchanged,
                "dashboard_url": url,
            }
            _report(args, data, result.line(url))
            if result.not_moved:
                print(
                    f"promptrun templates push: note: {name}: release label(s) "
                    f"{', '.join(result.not_moved)} stay where they are: the content equals "
                    f"v{result.version}, so nothing was published (--force publishes a new "
                    "version that carries them)",
                    file=sys.stderr,
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
        print(f"promptrun templates push: error: {clean(line)}", file=sys.stderr)
    else:
        print(clean(line), flush=True)
