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
    add_connection,
    add_inputs,
    connection,
    parse_pairs,
    print_json,
)

__all__ = ["add_parser", "answer_text"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
                result = await _print_stream(result, as_json=args.json)
            else:
                _print_result(result, as_json=args.json)
            if not await client.flush(timeout=10):
                print(
                    "promptrun run: the log could not be shipped yet; it waits in the spool",
                    file=sys.stderr,
                )
    except PromptLayerValidationError as exc:
        raise CliError(exc.message, EXIT_USAGE) from None
    except PromptLayerError as exc:
        raise CliError(exc.message, EXIT_FAILURE) from None
    return EXIT_OK


def _print_result(result: dict[str, Any], *, as_json: bool) -> None:
    blueprint = result.get("prompt_blueprint")
    if as_json:
        print_json(
            {
                "request_id": result.get("request_id"),
                "text": answer_text(blueprint),
                "prompt_blueprint": blueprint,
                "raw_response": _raw(result.get("raw_response")),
            }
        )
        return
    print(answer_text(blueprint))
    print(f"request {result.get('request_id')}", file=sys.stderr)


async def _print_stream(chunks: Any, *, as_json: bool) -> dict[str, Any]:
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
            sys.stdout.write(delta)
            sys.stdout.flush()
    if as_json:
        print_json(
            {
                "request_id": last.get("request_id"),
                "text": shown,
                "prompt_blueprint": last.get("prompt_blueprint"),
            }
        )
    else:
        sys.stdout.write("\n")
        print(f"request {last.get('request_id')}", file=sys.stderr)
    return last


def run_command(args: argparse.Namespace) -> int:
    import asyncio

    try:
        return asyncio.run(_execute(args))
    except CliError:
        raise
    except Exception as exc:  # the provider SDK's own errors, passed through by the client
        raise CliError(f"{type(exc).__name__}: {exc}", EXIT_FAILURE) from None
