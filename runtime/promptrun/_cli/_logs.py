"""``promptrun logs``: the request log, oldest of the last N first; ``--follow`` keeps polling;
``logs show ID`` prints one request in full.

Ids are accepted as the server's (``#155`` or ``155``) or the client's (``req_...``), and each
request is shown with both, and with the cost the dashboard shows (priced by the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from promptrun._cli._common import (
    EXIT_OK,
    Commands,
    add_connection,
    connection,
    number,
    open_api,
    print_json,
    whole_number,
)
from promptrun._cli._output import (
    Column,
    Table,
    clean,
    cost_text,
    dashboard_url,
    message_lines,
    request_ref,
    status_colour,
    utc,
)

__all__ = ["add_parser"]

_PAGE = 200
_COLUMNS = (
    Column("ID", width=4),
    Column("TIME (UTC)"),
    Column("PROMPT", width=10),
    Column("MODEL", width=20),
    Column("STATUS", colour=status_colour, width=7),
    Column("TOKENS", right=True, width=9),
    Column("COST", right=True, width=9),
    Column("LATENCY", right=True),
)


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "logs",
        help="print the request log (tail it with --follow; one request with `logs show ID`)",
        description=(
            "Print the newest logged requests, oldest first; --follow waits for more. "
            "`promptrun logs show ID` prints one request in full."
        ),
    )
    parser.add_argument(
        "--limit", type=whole_number(1, 1000), default=20, metavar="N", help="how many"
    )
    parser.add_argument("--prompt", metavar="NAME", help="only requests made with this template")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    parser.add_argument(
        "--interval",
        type=number(0, above=True, what="a number of seconds"),
        default=1.0,
        metavar="SECONDS",
        help="poll period with --follow",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per request")
    add_connection(parser)
    parser.set_defaults(run=run_command, command_name="logs")

    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    show = sub.add_parser(
        "show",
        help="print one request: ids, model, tokens, cost, metadata, messages",
        description="Print one logged request in full.",
        epilog="ID is the server's id (#155 or 155) or the client's request id (req_...).",
    )
    show.add_argument("id", metavar="ID")
    show.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS,
        help="print the stored request as JSON",
    )  # fmt: skip
    add_connection(show, inherited=True)
    show.set_defaults(run=show_command, command_name="logs show")


def _row(item: dict[str, Any]) -> list[str]:
    start = item.get("request_start_time") or 0.0
    end = item.get("request_end_time") or start
    prompt = item.get("prompt_name") or "-"
    if item.get("prompt_version"):
        prompt += f" v{item['prompt_version']}"
    return [
        f"#{item.get('id')}",
        utc(start),
        prompt,
        f"{item.get('provider')}/{item.get('model')}",
        str(item.get("status")),
        f"{item.get('input_tokens', 0)}/{item.get('output_tokens', 0)}",
        cost_text(item.get("cost"), bool(item.get("cost_estimated"))),
        f"{max(0.0, end - start):.2f}s",
    ]


async def _newer_than(
    fetch: Callable[[int, int], Awaitable[list[dict[str, Any]]]], last_id: int
) -> list[dict[str, Any]]:
    """Every request with an id above ``last_id``, oldest first, however many arrived."""
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await fetch(_PAGE, offset)
        fresh = [item for item in page if int(item["id"]) > last_id]
        found.extend(fresh)
        if len(fresh) < len(page) or len(page) < _PAGE:
            break
        offset += _PAGE
    return found[::-1]


async def _tail(args: argparse.Namespace) -> int:
    table = Table(_COLUMNS)

    def show(items: list[dict[str, Any]], first: bool) -> None:
        if args.json:
            for item in items:
                print_json(item)
        elif first:
            table.print([_row(item) for item in items])
        else:
            table.print_rows([_row(item) for item in items])

    async with open_api(args) as api:

        async def fetch(limit: int, offset: int) -> list[dict[str, Any]]:
            params = {"limit": str(limit), "offset": str(offset)}
            if args.prompt:
                params["prompt_name"] = args.prompt
            answer = await api.request(
                "GET", "/promptrun/v1/requests", params=params, context="reading the request log"
            )
            items: list[dict[str, Any]] = answer.get("items") or []
            return items

        recent = (await fetch(args.limit, 0))[::-1]
        if recent or args.follow:
            show(recent, first=True)
        else:
            print("no requests logged yet" + (f" for {args.prompt!r}" if args.prompt else ""),
                  file=sys.stderr)  # fmt: skip
        if not args.follow:
            return EXIT_OK
        last_id = max((int(item["id"]) for item in recent), default=0)
        while True:
            await asyncio.sleep(args.interval)
            fresh = await _newer_than(fetch, last_id)
            show(fresh, first=False)
            last_id = max([last_id, *(int(item["id"]) for item in fresh)])


def run_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how --follow ends


# -- logs show ---------------------------------------------------------------------------


async def _fetch_one(args: argparse.Namespace) -> dict[str, Any]:
    async with open_api(args) as api:
        item: dict[str, Any] = await api.request(
            "GET",
            f"/promptrun/v1/requests/{request_ref(args.id)}",
            context=f"reading request {args.id}",
        )
    return item


def _detail_lines(item: dict[str, Any], url: str | None) -> list[str]:
    start = item.get("request_start_time") or 0.0
    end = item.get("request_end_time") or start
    prompt = item.get("prompt_name") or "-"
    if item.get("prompt_version"):
        prompt += f" v{item['prompt_version']}"
    lines = [
        f"#{item.get('id')}  {item.get('client_request_id') or '-'}  {utc(start)} UTC",
        f"prompt:    {prompt}",
        f"model:     {item.get('provider')}/{item.get('model')}",
        f"status:    {item.get('status')}"
        + (f"  {item.get('error_type') or ''} {item.get('error_message') or ''}".rstrip()),
        f"tokens:    {item.get('input_tokens', 0)} in, {item.get('output_tokens', 0)} out",
        f"cost:      {cost_text(item.get('cost'), bool(item.get('cost_estimated')))}",
        f"latency:   {max(0.0, end - start):.2f}s",
    ]
    scores = item.get("scores") or {}
    if scores:
        lines.append("scores:    " + ", ".join(f"{k}={v}" for k, v in sorted(scores.items())))
    if item.get("tags"):
        lines.append("tags:      " + ", ".join(map(str, item["tags"])))
    for key, value in sorted((item.get("metadata") or {}).items()):
        lines.append(f"metadata:  {key}={value}")
    if item.get("input_variables"):
        lines.append(
            "variables: " + json.dumps(item["input_variables"], ensure_ascii=False, default=str)
        )
    if url:
        lines.append(f"dashboard: {url}")
    blueprint = item.get("prompt_blueprint") or {}
    conversation = message_lines(blueprint.get("prompt_template"))
    if conversation:
        lines.append("")
        lines.extend(conversation)
    return lines


def show_command(args: argparse.Namespace) -> int:
    item = asyncio.run(_fetch_one(args))
    base_url, _ = connection(args)
    url = dashboard_url(base_url, f"/requests/{item.get('id')}")
    if args.json:
        print_json({**item, "dashboard_url": url})
    else:
        print(clean("\n".join(_detail_lines(item, url))))
    return EXIT_OK
