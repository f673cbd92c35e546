"""``promptrun logs``: the request log, oldest of the last N first; ``--follow`` keeps polling."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from promptrun._cli._common import EXIT_OK, add_connection, open_api, print_json

__all__ = ["add_parser", "format_line"]

_PAGE = 200


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "logs",
        help="print the request log (tail it with --follow)",
        description="Print the newest logged requests, oldest first; --follow waits for more.",
    )
    parser.add_argument(
        "--limit", type=_count, default=20, metavar="N", help="how many (default 20)"
    )
    parser.add_argument("--prompt", metavar="NAME", help="only requests made with this template")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="poll period with --follow",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per request")
    add_connection(parser)
    parser.set_defaults(run=run_command, command_name="logs")


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 1..1000, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return value


def format_line(item: dict[str, Any]) -> str:
    """One request on one line: id, time, template, provider/model, status, tokens, latency."""
    start = item.get("request_start_time") or 0.0
    end = item.get("request_end_time") or start
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start))
    prompt = item.get("prompt_name") or "-"
    if item.get("prompt_version"):
        prompt += f" v{item['prompt_version']}"
    tokens = f"{item.get('input_tokens', 0)}/{item.get('output_tokens', 0)} tok"
    return (
        f"#{item.get('id')}  {when}  {prompt}  {item.get('provider')}/{item.get('model')}  "
        f"{item.get('status')}  {tokens}  {max(0.0, end - start):.2f}s"
    )


def _show(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(item)
    else:
        print(format_line(item), flush=True)


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
        for item in recent:
            _show(item, args.json)
        if not args.follow:
            return EXIT_OK
        last_id = max((int(item["id"]) for item in recent), default=0)
        while True:
            await asyncio.sleep(args.interval)
            for item in await _newer_than(fetch, last_id):
                _show(item, args.json)
                last_id = max(last_id, int(item["id"]))


def run_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how --follow ends
