"""``promptrun keys list|create|revoke``: a workspace's API keys.

Two ways in. Through a running server with an admin key (``--base-url``, ``--api-key``, as
every other command): the key's own workspace. Or straight at the database with ``--db``
(the file or URL ``promptrun serve --db`` uses): every workspace, for whoever runs the
server, e.g. to make the first admin key of a new workspace or to recover from a lost one.
A new key is printed once, alone on stdout (so ``KEY=$(promptrun keys create ci)`` works);
what it is goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptrun._cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    add_connection,
    open_api,
    print_json,
)

if TYPE_CHECKING:
    from promptrun.server.store.base import Store

__all__ = ["add_parser", "format_key"]


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "keys",
        help="list, create and revoke API keys (admin key, or --db)",
        description=(
            "Manage API keys: through a server with an admin key (its workspace), or with "
            "--db straight on the server's database (every workspace). A new key is printed "
            "once, alone on stdout; a revoked key is refused by every server process within "
            "a second."
        ),
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the keys (never the keys themselves)")
    listing.add_argument("--revoked", action="store_true", help="revoked keys too")
    _common(listing, workspace_help="only this workspace (with --db)")
    listing.set_defaults(run=_list)
    create = actions.add_parser("create", help="make a key and print it, once")
    create.add_argument("name", help="who or what will use it, e.g. ci or 'ada laptop'")
    create.add_argument(
        "--role",
        choices=("member", "admin"),
        help="admin keys can also manage keys (default: member; with --db the first key of a "
        "workspace is admin)",
    )
    _common(create, workspace_help="the workspace, made if new (with --db; default 'default')")
    create.set_defaults(run=_create)
    revoke = actions.add_parser("revoke", help="revoke a key by its id (see list)")
    revoke.add_argument("id", type=_key_id, help="the key's id")
    _common(revoke, workspace_help=None)
    revoke.set_defaults(run=_revoke)
    parser.set_defaults(command_name="keys")


def _common(parser: argparse.ArgumentParser, *, workspace_help: str | None) -> None:
    parser.add_argument("--json", action="store_true", help="JSON, one object per line")
    add_connection(parser)
    direct = parser.add_argument_group("database (instead of a server)")
    direct.add_argument(
        "--db",
        metavar="PATH|URL",
        help="the SQLite file or postgresql:// URL that promptrun serve --db uses",
    )
    if workspace_help is not None:
        direct.add_argument("--workspace", metavar="NAME", help=workspace_help)


def _key_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"a key id is a positive integer, not {text!r}")
    return int(text)


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))


def format_key(item: dict[str, Any]) -> str:
    """One key on one line: id, workspace, name, role, hint, source, created, last used."""
    status = "revoked " + _when(item["revoked_at"]) if item.get("revoked_at") else "active"
    current = "  (this key)" if item.get("current") else ""
    return (
        f"#{item['id']}  {item['workspace']}  {item['name']!r}  {item['role']}  "
        f"{item['hint'] or '-'}  {item['source']}  created {_when(item['created_at'])}  "
        f"used {_when(item['last_used_at'])}  {status}{current}"
    )


# -- straight on the database --------------------------------------------------------------


@asynccontextmanager
async def _database(target: str) -> AsyncIterator[Store]:
    from promptrun.server.store import postgres_store, sqlite_store
    from promptrun.server.store._pg_url import is_postgres_url
    from promptrun.server.store.base import StoreConfigError

    if is_postgres_url(target):
        store = postgres_store(target, min_connections=1, max_connections=2)
    else:
        store = sqlite_store(target)
    try:
        await store.start()
    except (OSError, RuntimeError, StoreConfigError) as exc:
        raise CliError(f"cannot open the database {target}: {exc}") from None
    try:
        yield store
    finally:
        await store.close()


async def _workspace_id(store: Store, name: str | None) -> int | None:
    if name is None:
        return None
    keys = await store.list_keys(None, revoked=True)
    found = {k.workspace_name: k.workspace for k in keys}.get(name)
    if found is None:
        raise CliError(f"no workspace {name!r} has keys in this database")
    return found


def _checked(call: Any) -> Any:
    try:
        return call()
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


# -- the actions ---------------------------------------------------------------------------


Action = Callable[[argparse.Namespace], Coroutine[Any, Any, list[dict[str, Any]]]]


def _run(args: argparse.Namespace, direct: Action, remote: Action) -> list[dict[str, Any]]:
    """The action on the database (``--db``) or through the server; the keys it answers."""
    if args.db and (args.base_url or args.api_key):
        raise CliError("give either --db or a server (--base-url/--api-key), not both", EXIT_USAGE)
    if not args.db and getattr(args, "workspace", None):
        raise CliError(
            "--workspace goes with --db; through a server, a key manages its own workspace",
            EXIT_USAGE,
        )
    if args.db:
        from promptrun.server.store._pg_url import is_postgres_url

        if not is_postgres_url(args.db) and not Path(args.db).is_file():
            # Opening a SQLite file that is not there would make an empty database.
            raise CliError(
                f"no database at {args.db}: give the --db that promptrun serve uses", EXIT_USAGE
            )
        return asyncio.run(direct(args))
    return asyncio.run(remote(args))


def _show(items: list[dict[str, Any]], as_json: bool) -> None:
    for item in items:
        if as_json:
            print_json(item)
        else:
            print(format_key(item), flush=True)


def _list(args: argparse.Namespace) -> int:
    from promptrun.server._key_admin import key_view

    async def direct(args: argparse.Namespace) -> list[dict[str, Any]]:
        async with _database(args.db) as store:
            workspace = await _workspace_id(store, args.workspace)
            return [key_view(k) for k in await store.list_keys(workspace, revoked=args.revoked)]

    async def remote(args: argparse.Namespace) -> list[dict[str, Any]]:
        async with open_api(args) as api:
            answer = await api.request(
                "GET", "/promptrun/v1/keys", context="listing keys",
                params={"include_revoked": "true" if args.revoked else "false"},
            )  # fmt: skip
            return list(answer.get("items") or [])

    _show(_run(args, direct, remote), args.json)
    return EXIT_OK


def _create(args: argparse.Namespace) -> int:
    from promptrun.server._key_admin import check_name, create_key, key_view
    from promptrun.server.auth import HMAC_SECRET, KeyHasher

    name = _checked(lambda: check_name(args.name))

    async def direct(args: argparse.Namespace) -> list[dict[str, Any]]:
        async with _database(args.db) as store:
            hasher = KeyHasher(await store.shared_secret(HMAC_SECRET))
            key, stored = await create_key(
                store, hasher.digest, workspace=args.workspace or "default", name=name,
                role=args.role,
            )  # fmt: skip
            return [{"key": key, "api_key": key_view(stored)}]

    async def remote(args: argparse.Namespace) -> list[dict[str, Any]]:
        async with open_api(args) as api:
            answer = await api.request(
                "POST", "/promptrun/v1/keys", context="creating a key",
                body={"name": name, "role": args.role or "member"}, expect=(201,),
            )  # fmt: skip
            return [answer]

    (made,) = _run(args, direct, remote)
    view = made["api_key"]
    if args.json:
        print_json({"key": made["key"], **view})
    else:
        print(made["key"], flush=True)
        print(
            f"created key {view['id']} {view['name']!r} ({view['role']}, workspace "
            f"{view['workspace']!r}); it is shown only this once",
            file=sys.stderr,
        )
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    from promptrun.server._key_admin import key_view
    from promptrun.server.store.base import KeyRefused, NotFoundError

    async def direct(args: argparse.Namespace) -> list[dict[str, Any]]:
        async with _database(args.db) as store:
            try:
                return [key_view(await store.revoke_key(None, args.id))]
            except (KeyRefused, NotFoundError) as exc:
                raise CliError(exc.message) from None

    async def remote(args: argparse.Namespace) -> list[dict[str, Any]]:
        async with open_api(args) as api:
            answer = await api.request(
                "POST", f"/promptrun/v1/keys/{args.id}/revoke", context=f"revoking key {args.id}"
            )
            return [answer["api_key"]]

    (view,) = _run(args, direct, remote)
    if args.json:
        print_json(view)
    else:
        print(
            f"revoked key {view['id']} {view['name']!r} (workspace {view['workspace']!r}): "
            "every server process on the database refuses it within a second",
            flush=True,
        )
    return EXIT_OK
