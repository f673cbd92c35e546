"""``promptrun run NAME``: run a registry prompt once and print the answer."""

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
    open_api,
    parse_pairs,
    print_json,
)
from promptrun._cli._output import clean, cost_text, dashboard_url, request_ref

__all__ = ["add_parser", "answer_text"]


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "run",
        help="run a registry prompt on its provider and log it",
        description=(
            "Fetch a prompt template, run it on its LLM provider with your provider key (from "
            "the environment, e.g. OPENAI_API_KEY), log the request, and print the answer."
        ),
        epilog="example: promptrun run greet --var name=Ada --label prod --stream",
    )
    parser.add_argument("name", help="the prompt template's name")
    add_inputs(parser, "request", "template")
    parser.add_argument("--provider", help="run on this provider instead of the template's")
    parser.add_argument("--model", help="run this model instead of the template's")
    parser.add_argument(
        "--tag", action="append", default=[], help="tag the logged request (repeatable)"
    )
    parser.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_connection(parser)
    parser.set_defaults(run=run_command, command_name="run")


def answer_text(blueprint: Any) -> str:
    """The text of a run's last (assistant) message, tool calls written out."""
    try:
        message = blueprint["prompt_template"]["messages"][-1]
    except (KeyError, IndexError, TypeError):
        return ""
    pieces = []
    for part in message.get("content") or ():
        if isinstance(part, dict) and part.get("type") == "text":
            pieces.append(str(part.get("text") or ""))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        pieces.append(f"[tool call] {function.get('name')}({function.get('arguments') or ''})")
    return "\n".join(p for p in pieces if p)


def _raw(response: Any) -> Any:
    for dump in ("model_dump", "to_dict"):
        method = getattr(response, dump, None)
        if callable(method):
            try:
                return method(mode="json") if dump == "model_dump" else method()
            except TypeError:
                return method()
    return (
        response if isinstance(response, dict | list | str | int | float | None) else str(response)
    )


async def _execute(args: argparse.Namespace) -> int:
    from promptrun import AsyncPromptLayer, PromptLayerError, PromptLayerValidationError

    base_url, api_key = connection(args)
    variables = {
        **parse_pairs(args.var, "--var"),
        **parse_pairs(args.var_json, "--var-json", as_json=True),
    }
    metadata = parse_pairs(args.metadata, "--metadata")
    try:
        async with AsyncPromptLayer(api_key=api_key, base_url=base_url) as client:
            result = await client.run(
                args.name,
                prompt_version=args.version,
                prompt_release_label=args.label,
                input_variables=variables,
                tags=args.tag or None,
                metadata=metadata or None,
                stream=args.stream,
                provider=args.provider,
                model=args.model,
            )
            if args.stream:
                shown, last = await _print_stream(result, as_json=args.json)
                final = {"request_id": last.get("request_id"), "text": shown,
                         "prompt_blueprint": last.get("prompt_blueprint")}  # fmt: skip
            else:
                blueprint = result.get("prompt_blueprint")
                final = {
                    "request_id": result.get("request_id"),
                    "text": answer_text(blueprint),
                    "prompt_blueprint": blueprint,
                    "raw_response": _raw(result.get("raw_response")),
                }
                if not args.json:
                    print(clean(str(final["text"])), flush=True)
            shipped = await client.flush(timeout=10)
    except PromptLayerValidationError as exc:
        raise CliError(exc.message, EXIT_USAGE) from None
    except PromptLayerError as exc:
        raise CliError(exc.message, EXIT_FAILURE) from None
    url = dashboard_url(base_url, f"/requests/{final['request_id']}")
    # Only promptrun serve has a dashboard, and the read API that gives the id and the cost.
    logged = await _logged(args, final["request_id"]) if shipped and url else {}
    if logged.get("id") is not None:
        url = dashboard_url(base_url, f"/requests/{logged['id']}")
    if args.json:
        print_json({**final, "id": logged.get("id"), "cost": logged.get("cost"),
                    "dashboard_url": url})  # fmt: skip
    else:
        print(clean(_request_line(final["request_id"], logged, url)), file=sys.stderr)
    if not shipped:
        print(
            "promptrun run: the log could not be shipped yet; it waits in the spool",
            file=sys.stderr,
        )
    return EXIT_OK


async def _logged(args: argparse.Namespace, request_id: Any) -> dict[str, Any]:
    """The logged request as the server stores it (its id, its cost), if it can say."""
    from promptrun._errors import PromptLayerError

    try:
        async with open_api(args, timeout=5) as api:
            found: dict[str, Any] = await api.request(
                "GET", f"/promptrun/v1/requests/{request_ref(str(request_id))}",
                context="reading the logged request",
            )  # fmt: skip
    except PromptLayerError:  # a server without promptrun's read API (the hosted one)
        return {}
    return found


def _request_line(request_id: Any, logged: dict[str, Any], url: str | None) -> str:
    """``request req_... (#155, ~$0.000019): URL`` for stderr."""
    about = []
    if logged.get("id") is not None:
        about.append(f"#{logged['id']}")
    if logged:
        about.append(cost_text(logged.get("cost"), bool(logged.get("cost_estimated"))))
    line = f"request {request_id}" + (f" ({', '.join(about)})" if about else "")
    return line + (f": {url}" if url and logged else "")


async def _print_stream(chunks: Any, *, as_json: bool) -> tuple[str, dict[str, Any]]:
    shown = ""
    last: dict[str, Any] = {}
    async for chunk in chunks:
        last = chunk
        text = answer_text(chunk.get("prompt_blueprint"))
        # Each chunk carries the whole answer so far; print only what is new.
        delta = text[len(shown) :] if text.startswith(shown) else text
        shown = text
        if not delta:
            continue
        if as_json:
            print_json({"delta": delta})
        else:
            sys.stdout.write(clean(delta))
            sys.stdout.flush()
    if not as_json:
        sys.stdout.write("\n")
        sys.stdout.flush()
    return shown, last


def run_command(args: argparse.Namespace) -> int:
    import asyncio

    try:
        return asyncio.run(_execute(args))
    except CliError:
        raise
    except Exception as exc:  # the provider SDK's own errors, passed through by the client
        raise CliError(f"{type(exc).__name__}: {exc}", EXIT_FAILURE) from None
