"""What the subcommands share: the parser, option types, connection options, exit codes,
``--var`` parsing, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeAlias

if TYPE_CHECKING:
    from promptrun._http import ApiTransport

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "Commands",
    "Parser",
    "Progress",
    "add_connection",
    "connection",
    "number",
    "open_api",
    "parse_pairs",
    "print_json",
    "whole_number",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # the server or the provider said no, or could not be reached
EXIT_USAGE = 2  # the command line or its inputs were wrong


class CliError(Exception):
    """Stops a subcommand with a message for stderr and an exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _Formatter(argparse.HelpFormatter):
    """Says each option's default in ``--help``, unless its help already does or there is
    none worth saying (off, empty, unset)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or default == []
        ):
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


class Parser(argparse.ArgumentParser):
    """``argparse`` with usage errors that name the option first (``--limit: expected a whole
    number, got 'abc'``) and defaults shown in ``--help``; subcommands' parsers are made of the
    same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        message = message.removeprefix("argument ")
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


#: What ``add_subparsers()`` of a :class:`Parser` gives: each subcommand module's
#: ``add_parser(commands)`` adds its parser there. (A string: argparse's class is generic
#: only to type checkers.)
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def whole_number(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An option type: an integer, within ``low..high`` when given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {_bounds(low, high)}, got {value}")
        return value

    return parse


def number(
    low: float | None = None, *, above: bool = False, what: str = "a number"
) -> Callable[[str], float]:
    """An option type: a finite number, at least ``low`` (``above``: more than ``low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if low is not None and (value <= low if above else value < low):
            bound = f"more than {low:g}" if above else f"{low:g} or more"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text}")
        return value

    return parse


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"a whole number from {low} to {high}"
    if low is not None:
        return f"a whole number of at least {low}"
    return f"a whole number of at most {high}"


def add_inputs(parser: argparse.ArgumentParser, what: str, versioned: str) -> None:
    """``--var``, ``--var-json``, ``--metadata`` and ``--version``/``--label``, for running a
    prompt or a workflow (``what`` gets the metadata; ``versioned`` is what has versions)."""
    parser.add_argument(
        "--var", action="append", default=[], metavar="KEY=VALUE",
        help="an input variable (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--var-json", action="append", default=[], metavar="KEY=JSON",
        help="an input variable whose value is JSON, e.g. a list of messages (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE",
        help=f"{what} metadata (repeatable)",
    )  # fmt: skip
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--version", type=whole_number(1), metavar="N", help=f"this {versioned} version"
    )
    which.add_argument("--label", metavar="LABEL", help="the version this release label is on")


def add_connection(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """``--base-url`` and ``--api-key``. ``inherited``: on a subcommand of a command that has
    them too, where given only after the subcommand's name they must not reset what was given
    before it (``promptrun logs --api-key K show 1``)."""
    default = argparse.SUPPRESS if inherited else None
    group = parser.add_argument_group("server")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default,
        help="PromptLayer-compatible API (default: $PROMPTLAYER_BASE_URL, else the hosted API)",
    )
    group.add_argument(
        "--api-key", metavar="KEY", default=default,
        help="API key (default: $PROMPTLAYER_API_KEY)",
    )  # fmt: skip


def connection(args: argparse.Namespace) -> tuple[str, str]:
    """``(base_url, api_key)`` from the options, then the environment."""
    from promptrun._config import DEFAULT_BASE_URL
    from promptrun._validate import is_http_url

    key = args.api_key or os.environ.get("PROMPTLAYER_API_KEY")
    if not key:
        raise CliError(
            "no API key: pass --api-key or set PROMPTLAYER_API_KEY "
            "(`promptrun serve` prints one when it generates it)",
            EXIT_USAGE,
        )
    url = (args.base_url or os.environ.get("PROMPTLAYER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not is_http_url(url):
        raise CliError(f"--base-url {url!r} must start with http:// or https://", EXIT_USAGE)
    return url, key


@asynccontextmanager
async def open_api(args: argparse.Namespace, timeout: float = 30.0) -> AsyncIterator[ApiTransport]:
    """A transport to the server the options name, closed afterwards."""
    from promptrun._http import ApiTransport

    base_url, key = connection(args)
    transport = ApiTransport(base_url, key, timeout)
    await transport.open()
    try:
        yield transport
    finally:
        await transport.close()


def parse_pairs(pairs: Sequence[str], option: str, *, as_json: bool = False) -> dict[str, Any]:
    """``["k=v", ...]`` as a dict; with ``as_json`` each value is parsed as JSON."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{option} {pair!r} should be KEY=VALUE", EXIT_USAGE)
        if as_json:
            try:
                found[key] = json.loads(value)
            except ValueError as exc:
                raise CliError(
                    f"{option} {key}: the value is not JSON ({exc})", EXIT_USAGE
                ) from None
        else:
            found[key] = value
    return found


def print_json(value: Any, out: TextIO | None = None) -> None:
    """One JSON document per line, so the output can be piped into ``jq`` or read line by line."""
    stream = out or sys.stdout
    stream.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    stream.flush()


class Progress:
    """``[3/10] pushing greet.json`` on one stderr line, rewritten; silent unless a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._total = total
        self._shown = self._stream.isatty() and total > 1
        self._width = 0

    def step(self, done: int, what: str) -> None:
        if not self._shown:
            return
        line = f"[{done}/{self._total}] {what}"[:120]
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        """Blank the line, so what goes to stdout next starts on a clean line."""
        if self._shown and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
