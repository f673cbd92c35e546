"""Fault injection for testing clients: make chosen paths fail, slowly or with a status.

Only with ``promptrun serve --fault-injection``. ``POST /promptrun/v1/_faults`` adds rules
(``{"rules": [{"path": "/track-request", "status": 503, "times": 2, "delay_ms": 0,
"retry_after": 1}]}``); ``GET`` shows the rules left and how many faults each path got;
``DELETE`` clears both. A rule matches a request whose path starts with ``path``; the first
rule with uses left applies. ``status: null`` only delays; ``times: null`` never runs out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from promptrun.server._http import error_response, json_response, read_body
from promptrun.server._state import FAULTS, KEYRING
from promptrun.server.openapi import Operation

__all__ = [
    "FAULTS_PATH",
    "OPERATIONS",
    "FaultInjector",
    "FaultRule",
    "fault_middleware",
    "routes",
]

FAULTS_PATH = "/promptrun/v1/_faults"


class FaultRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = 503
    times: Annotated[int, msgspec.Meta(ge=1)] | None = 1
    delay_ms: Annotated[float, msgspec.Meta(ge=0, le=600_000)] = 0.0
    retry_after: Annotated[float, msgspec.Meta(ge=0)] | None = None


class FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[FaultRule]


class FaultsState(msgspec.Struct):
    success: bool
    rules: list[FaultRule]
    hits: dict[str, int]


_BODY = msgspec.json.Decoder(FaultsBody)


class FaultInjector:
    """The rules in force and the faults served, per path."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.hits: Counter[str] = Counter()

    def take(self, path: str) -> FaultRule | None:
        """The rule for this path, using one of its times."""
        for i, rule in enumerate(self.rules):
            if path.startswith(rule.path):
                if rule.times is not None:
                    if rule.times <= 1:
                        del self.rules[i]
                    else:
                        self.rules[i] = msgspec.structs.replace(rule, times=rule.times - 1)
                self.hits[path] += 1
                return rule
        return None


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    injector = request.config_dict[FAULTS]
    rule = injector.take(request.path) if injector.rules and request.path != FAULTS_PATH else None
    if rule is None:
        return await handler(request)
    if rule.delay_ms:
        await asyncio.sleep(rule.delay_ms / 1000)
    if rule.status is None:
        return await handler(request)
    headers = None
    if rule.retry_after is not None:
        headers = {"Retry-After": f"{rule.retry_after:g}"}
    return error_response(
        rule.status,
        f"fault injected for {rule.path!r} (promptrun serve --fault-injection)",
        headers,
    )


routes = web.RouteTableDef()


@routes.post(FAULTS_PATH)
async def add_faults(request: web.Request) -> web.Response:
    await request.app[KEYRING].workspace(request)
    body = await read_body(request, _BODY)
    request.app[FAULTS].rules.extend(body.rules)
    return _state(request.app[FAULTS])


@routes.get(FAULTS_PATH)
async def show_faults(request: web.Request) -> web.Response:
    await request.app[KEYRING].workspace(request)
    return _state(request.app[FAULTS])


@routes.delete(FAULTS_PATH)
async def clear_faults(request: web.Request) -> web.Response:
    await request.app[KEYRING].workspace(request)
    injector = request.app[FAULTS]
    injector.rules.clear()
    injector.hits.clear()
    return _state(injector)


def _state(injector: FaultInjector) -> web.Response:
    return json_response({"success": True, "rules": injector.rules, "hits": dict(injector.hits)})


OPERATIONS = [
    Operation(
        method=method, path=FAULTS_PATH, tag="testing", response=FaultsState,
        summary=f"{verb} fault rules (only with --fault-injection)",
        request=FaultsBody if method == "POST" else None,
    )
    for method, verb in (("POST", "Add"), ("GET", "Show"), ("DELETE", "Clear"))
]  # fmt: skip
