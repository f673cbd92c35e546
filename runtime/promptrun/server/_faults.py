"""Fault injection for testing clients: make chosen paths fail, slowly or with a status.

Only with ``promptrun serve --fault-injection``. ``POST /promptrun/v1/_faults`` adds rules
(``{"rules": [{"path": "/track-request", "status": 503, "times": 2, "delay_ms": 0,
"retry_after": 1}]}``); ``GET`` shows the rules left and how many faults each path got;
``DELETE`` clears both. A rule matches a request whose path starts with ``path``; the first
rule with uses left applies. ``status: null`` only delays; ``times: null`` never runs out.

Rules belong to the workspace of the key that set them, and apply only to requests made with
a key of that workspace (in a header or the JSON body): one team testing its client against a
failing server cannot make the server fail for another. A request without a known key (such
as ``GET /health``) meets no injected fault.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from promptrun.server._http import ApiError, error_response, json_response, read_body
from promptrun.server._state import KEYRING
from promptrun.server.openapi import Operation
from promptrun.wire._limits import Name

__all__ = [
    "FAULTS",
    "FAULTS_PATH",
    "MAX_RULES",
    "OPERATIONS",
    "FaultInjector",
    "FaultRule",
    "Faults",
    "fault_middleware",
    "routes",
]

FAULTS_PATH = "/promptrun/v1/_faults"
MAX_RULES = 1_000


class FaultRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: Name
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = 503
    times: Annotated[int, msgspec.Meta(ge=1)] | None = 1
    delay_ms: Annotated[float, msgspec.Meta(ge=0, le=600_000)] = 0.0
    retry_after: Annotated[float, msgspec.Meta(ge=0, le=86_400)] | None = None


class FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[FaultRule]


class FaultsState(msgspec.Struct):
    success: bool
    rules: list[FaultRule]
    hits: dict[str, int]


_BODY = msgspec.json.Decoder(FaultsBody)


@dataclass(slots=True)
class Faults:
    """One workspace's rules in force and the faults it was served, per path."""

    rules: list[FaultRule] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

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


class FaultInjector:
    """The fault rules of each workspace (by workspace id)."""

    def __init__(self) -> None:
        self.workspaces: dict[int, Faults] = {}

    def of(self, workspace: int) -> Faults:
        faults = self.workspaces.get(workspace)
        if faults is None:
            faults = self.workspaces[workspace] = Faults()
        return faults

    def has_rules(self) -> bool:
        return any(faults.rules for faults in self.workspaces.values())


FAULTS = web.AppKey("promptrun_faults", FaultInjector)


async def _rule_for(request: web.Request, injector: FaultInjector) -> FaultRule | None:
    if request.path == FAULTS_PATH or not injector.has_rules():
        return None
    workspace = await request.config_dict[KEYRING].workspace_if_known(request)
    faults = injector.workspaces.get(workspace) if workspace is not None else None
    return faults.take(request.path) if faults is not None and faults.rules else None


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = await _rule_for(request, request.config_dict[FAULTS])
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


async def _faults_of(request: web.Request) -> Faults:
    workspace = await request.app[KEYRING].workspace(request)
    return request.app[FAULTS].of(workspace)


@routes.post(FAULTS_PATH)
async def add_faults(request: web.Request) -> web.Response:
    faults = await _faults_of(request)
    body = await read_body(request, _BODY)
    if len(faults.rules) + len(body.rules) > MAX_RULES:
        raise ApiError(400, f"a workspace has at most {MAX_RULES} fault rules: DELETE them first")
    faults.rules.extend(body.rules)
    return _state(faults)


@routes.get(FAULTS_PATH)
async def show_faults(request: web.Request) -> web.Response:
    return _state(await _faults_of(request))


@routes.delete(FAULTS_PATH)
async def clear_faults(request: web.Request) -> web.Response:
    faults = await _faults_of(request)
    faults.rules.clear()
    faults.hits.clear()
    return _state(faults)


def _state(faults: Faults) -> web.Response:
    return json_response({"success": True, "rules": faults.rules, "hits": dict(faults.hits)})


OPERATIONS = [
    Operation(
        method=method, path=FAULTS_PATH, tag="testing", response=FaultsState,
        summary=f"{verb} fault rules (only with --fault-injection)",
        request=FaultsBody if method == "POST" else None,
    )
    for method, verb in (("POST", "Add"), ("GET", "Show"), ("DELETE", "Clear"))
]  # fmt: skip
