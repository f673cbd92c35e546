"""``promptrun traces``: the traces a promptrun server received; ``traces show ID``: one, as a tree.

Reads ``/promptrun/v1/traces`` (a promptrun server's own endpoints; the hosted PromptLayer API
has no such thing). ``--follow`` prints each trace as it is first received.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from promptrun._cli._common import (
    EXIT_OK,
    Commands,
    add_connection,
    number,
    open_api,
    print_json,
    whole_number,
)
from promptrun._spantree import span_tree

__all__ = ["add_parser", "format_span", "format_trace"]

_PAGE = 200
_count = whole_number(1, 1000)
_seconds = number(0, above=True, what="a number of seconds")
_STATUSES = ("UNSET", "OK", "ERROR")


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "traces",
        help="list the traces the server received (tail them with --follow)",
        description=(
            "List the newest traces sent to a promptrun server's /v1/traces (OpenTelemetry "
            "OTLP), oldest first; --follow waits for more. `promptrun traces show TRACE_ID` "
            "prints one trace's spans as a tree."
        ),
        epilog="example: promptrun traces --errors --service checkout",
    )
    parser.add_argument(
        "--limit", type=_count, default=20, metavar="N", help="how many (default 20)"
    )
    parser.add_argument(
        "--service", metavar="NAME", help="only traces whose root is this service's"
    )
    parser.add_argument("--name", metavar="NAME", help="only traces whose root span has this name")
    parser.add_argument(
        "--status", choices=_STATUSES, help="only traces whose root has this status"
    )
    parser.add_argument(
        "--errors", action="store_true", help="only traces with a failed span (status ERROR)"
    )
    parser.add_argument(
        "--min-duration",
        type=_seconds,
        metavar="SECONDS",
        help="only traces that took at least this long",
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new traces")
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="poll period with --follow (default 1)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per trace ([] when there are none)"
    )
    add_connection(parser)
    parser.set_defaults(run=run_list, command_name="traces")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    show = sub.add_parser(
        "show",
        help="print one trace's spans as a tree",
        description="Print a trace's spans as a tree: name, kind, duration, offset from the "
        "trace's start, status, and the request logged in the span, if any.",
    )
    show.add_argument("trace_id", help="the trace's id (32 hex digits)")
    show.add_argument("--json", action="store_true", help="the trace and its spans as JSON")
    add_connection(show)
    show.set_defaults(run=run_show, command_name="traces show")


def _took(ms: Any) -> str:
    if not isinstance(ms, int | float) or ms < 0:
        return "-"
    return f"{ms:.1f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"


def format_trace(item: dict[str, Any]) -> str:
    """One trace on one line: id, start, root name, service, spans, duration, status."""
    start = (item.get("start_time_unix_nano") or 0) / 1e9
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(max(0.0, start)))
    errors = item.get("error_count") or 0
    status = item.get("status_code") or "UNSET"
    if errors:
        status += f" ({errors} failed span{'s' if errors != 1 else ''})"
    spans = item.get("span_count") or 0
    return (
        f"{item.get('trace_id')}  {when}  {item.get('name')}  [{item.get('service_name')}]  "
        f"{spans} span{'s' if spans != 1 else ''}  {_took(item.get('duration_ms'))}  {status}"
    )


def format_span(span: dict[str, Any], origin: int) -> str:
    """A span's line in the tree (without the tree's drawing)."""
    parts = [str(span.get("name"))]
    if span.get("kind") not in (None, "internal", "unspecified"):
        parts.append(f"[{span['kind']}]")
    parts.append(_took(span.get("duration_ms")))
    start = span.get("start_time_unix_nano")
    if isinstance(start, int):
        parts.append(f"(+{_took((start - origin) / 1e6)})")
    if span.get("status_code") == "ERROR":
        message = span.get("status_message")
        parts.append(f"ERROR: {message}" if message else "ERROR")
    if span.get("request_id") is not None:
        parts.append(f"request #{span['request_id']}")
    return "  ".join(parts)


def _tree_lines(trace: dict[str, Any]) -> list[str]:
    origin = trace.get("start_time_unix_nano") or 0
    lines = []
    for row in span_tree(trace.get("spans") or []):
        if row.depth == 0:
            prefix = ""
        else:
            prefix = "".join("│  " if more else "   " for more in row.open_levels)
            prefix += "└─ " if row.last else "├─ "
        lines.append(prefix + format_span(row.span, origin))
    return lines


async def _list(args: argparse.Namespace) -> int:
    async with open_api(args) as api:

        async def fetch(**params: str) -> list[dict[str, Any]]:
            query = dict(params)
            for name in ("service", "name", "status"):
                if getattr(args, name):
                    query[name] = getattr(args, name)
            if args.errors:
                query["has_error"] = "true"
            if args.min_duration:
                query["min_duration_ms"] = str(args.min_duration * 1000)
            answer = await api.request(
                "GET", "/promptrun/v1/traces", params=query, context="reading the traces"
            )
            items: list[dict[str, Any]] = answer.get("items") or []
            return items

        recent = (await fetch(limit=str(args.limit)))[::-1]
        for item in recent:
            _show(item, args.json)
        if not recent and args.json and not args.follow:
            print_json([])  # a JSON reader gets an empty list, not an empty output
        elif not recent and not args.json:
            filtered = args.service or args.name or args.status or args.errors or args.min_duration
            print("no traces" + (" match these filters" if filtered else " yet"), file=sys.stderr)
        if not args.follow:
            return EXIT_OK
        # Traces are numbered as first received: follow those after the newest shown (with
        # none shown, none matched, so every match from here on is new).
        last_id = max((int(item["id"]) for item in recent), default=0)
        while True:
            await asyncio.sleep(args.interval)
            while True:
                page = await fetch(after_id=str(last_id), limit=str(_PAGE))
                for item in page:
                    _show(item, args.json)
                    last_id = max(last_id, int(item["id"]))
                if len(page) < _PAGE:
                    break


def _show(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(item)
    else:
        print(format_trace(item), flush=True)


async def _one(args: argparse.Namespace) -> int:
    async with open_api(args) as api:
        trace: dict[str, Any] = await api.request(
            "GET",
            f"/promptrun/v1/traces/{args.trace_id.strip().lower()}",
            context=f"reading trace {args.trace_id!r}",
        )
    if args.json:
        print_json(trace)
        return EXIT_OK
    print(format_trace(trace))
    shown, total = len(trace.get("spans") or []), trace.get("span_count") or 0
    for line in _tree_lines(trace):
        print(line)
    if shown < total:
        print(f"(the first {shown} of {total} spans)", file=sys.stderr)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_list(args))
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how --follow ends


def run_show(args: argparse.Namespace) -> int:
    return asyncio.run(_one(args))
