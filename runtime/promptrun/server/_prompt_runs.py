"""Prompts run by the server itself: workflow prompt nodes and the dashboard's playground.

One path for both, built from the client's run pipeline (:mod:`promptrun._run`): the version
comes from this server's registry, is rendered in a render thread under the server's
rendering budget, and is called through a provider worker with **the server's own
environment** (never a client's key); the request is stored like any logged request.

Where a provider call goes (:func:`provider_route`): when the server runs its sandbox and has
neither credentials nor a base URL for a provider in its environment, that provider's SDK is
pointed at the server's own ``/sandbox`` with placeholder credentials, so prompts run
offline out of the box; otherwise the environment decides (the real provider, or the base
URL it names).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from aiohttp import web

from promptrun import _run
from promptrun import blueprint as bp
from promptrun._errors import PromptLayerValidationError
from promptrun._render_threads import run_rendering
from promptrun.actors.providers import TABLE, ProviderWorker
from promptrun.actors.shipper import dump_provider_object
from promptrun.blueprint._budget import metered
from promptrun.server._records import track_row
from promptrun.server.store.base import TemplateVersion
from promptrun.wire.ingest import TrackRecord
from promptrun.wire.tracking import TrackRequestBody

if TYPE_CHECKING:
    from promptrun.server.store.base import Store

__all__ = [
    "PROMPTS",
    "PromptCall",
    "PromptRunError",
    "PromptRunner",
    "ProviderRoute",
    "StreamEnd",
    "provider_route",
    "sandbox_origin",
]

_TRACK_BODY = msgspec.json.Decoder(TrackRequestBody)
_RECORD_ENCODER = msgspec.json.Encoder(enc_hook=dump_provider_object)

GetWorker = Callable[[str, "str | None", bool], Awaitable[ProviderWorker]]


def sandbox_origin(request: web.Request, sandbox: bool) -> str | None:
    """This server's own address as the client reached it (for the sandbox fallback)."""
    if not sandbox or request.transport is None:
        return None
    sockname = request.transport.get_extra_info("sockname")
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return None
    host, port = str(sockname[0]), int(sockname[1])
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """Where a provider's calls go from this server, in words a person can check."""

    provider: str
    sandbox_url: str | None  # the server's own sandbox, or None: the environment decides
    source: str  # e.g. "the server's sandbox: no OPENAI_API_KEY or OPENAI_BASE_URL is set"


def provider_route(provider: str, origin: str | None) -> ProviderRoute:
    """Where ``provider`` is called: the sandbox fallback, or the server's environment."""
    info = TABLE.get(provider)
    if info is None:
        return ProviderRoute(provider, None, "unknown provider")
    keys = [k for k in info.key_vars if os.environ.get(k)]
    base = os.environ.get(info.base_var)
    if origin is not None and not keys and not base:
        return ProviderRoute(
            provider,
            origin + info.sandbox_path,
            f"the server's sandbox at {info.sandbox_path} (the server's environment has no "
            f"{info.key_var} or {info.base_var})",
        )
    if keys or base:
        named = ", ".join([*keys, *([info.base_var] if base else [])])
        return ProviderRoute(provider, None, f"the server's environment ({named})")
    return ProviderRoute(
        provider,
        None,
        f"the server's environment, which has no {info.key_var}: calls will fail until the "
        f"server is started with it (or with its sandbox)",
    )


@dataclass(frozen=True, slots=True)
class PromptCall:
    """A version rendered and planned, with the worker that calls it and where it goes."""

    prepared: _run.PreparedRun
    worker: ProviderWorker
    route: ProviderRoute


class PromptRunError(Exception):
    """A provider call that failed; it was stored as a request (``request_id``)."""

    def __init__(self, message: str, request_id: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last item of a stream: the answer in full, and the stored request."""

    message: dict[str, Any]
    request_id: int
    response: Any


def _prepare(
    stored: TemplateVersion,
    model: dict[str, Any],
    variables: dict[str, Any],
    parameter_overrides: dict[str, Any] | None,
    routes: dict[str, str],
    budget: bp.RenderBudget,
) -> _run.PreparedRun:
    """Render a version and plan its call (in a render thread, under budget)."""
    with metered(budget):
        prompt_template = stored.prompt_template
        rendered_by_server = _run.needs_server_rendering(prompt_template)
        if rendered_by_server:
            prompt_template = bp.render_prompt_template(prompt_template, variables)
        template = {
            "id": stored.template_id,
            "version": stored.number,
            "prompt_name": stored.prompt_name,
            "prompt_template": prompt_template,
            "metadata": {**stored.metadata, "model": model},
            "llm_kwargs": bp.build_llm_kwargs(prompt_template, model),
            "provider_base_url": None,
        }
        return _run.prepare(
            stored.prompt_name,
            template,
            variables,
            parameter_overrides,
            routes,
            rendered_by_server=rendered_by_server,
        )


class _Collected:
    """A record sink for :func:`promptrun._run.stream` that keeps records to store."""

    def __init__(self) -> None:
        self.records: list[TrackRecord] = []

    def submit(self, record: TrackRecord) -> None:
        self.records.append(record)


class PromptRunner:
    """Runs registry prompts on the server: prepare, then call or stream; stores each run."""

    def __init__(self, store: Store, get_worker: GetWorker, budget: bp.RenderBudget) -> None:
        self.store = store
        self._worker = get_worker
        self.budget = budget

    async def prepare(
        self,
        stored: TemplateVersion,
        variables: Mapping[str, Any],
        *,
        origin: str | None,
        provider: str | None = None,
        model: str | None = None,
        parameter_overrides: dict[str, Any] | None = None,
    ) -> PromptCall:
        """Render ``stored`` with ``variables`` and plan the call (provider and model
        overrides as ``run()`` takes them); raises a RenderBudgetError naming the version
        past the budget, a PromptLayerValidationError for a version that cannot run."""
        where = f"prompt template {stored.prompt_name!r} (version {stored.number})"
        model_meta = stored.metadata.get("model")
        if not isinstance(model_meta, dict) or not model_meta.get("provider"):
            if not provider:
                raise PromptLayerValidationError(
                    f"{where} has no metadata.model: publish it with a model, or pick a provider"
                )
            model_meta = {}  # the provider's default model and parameters
        resolved = bp.resolve_model(model_meta, provider, model)
        routes = {
            name: route.sandbox_url
            for name in TABLE
            if (route := provider_route(name, origin)).sandbox_url is not None
        }
        try:
            prepared = await run_rendering(
                _prepare, stored, resolved, dict(variables), parameter_overrides, routes,
                self.budget,
            )  # fmt: skip
        except bp.RenderBudgetError as exc:
            raise exc.naming(where) from None
        chosen = prepared.plan.provider
        route = provider_route(chosen, origin)
        sandboxed = route.sandbox_url is not None and route.sandbox_url == prepared.base_url
        worker = await self._worker(chosen, prepared.base_url, sandboxed)
        return PromptCall(prepared, worker, route)

    async def store_record(self, workspace: int, record: TrackRecord) -> int:
        """Store a run's record as a logged request; returns its id."""
        decoded = _TRACK_BODY.decode(_RECORD_ENCODER.encode(record.body))
        row, _ = track_row(decoded, client_request_id=record.client_request_id)
        return await self.store.insert_request(workspace, row)

    async def _failed(
        self, workspace: int, call: PromptCall, log: _run.RunLog, started: float, exc: Exception
    ) -> int:
        record = log.record(
            _run.new_request_id(), call.prepared, call.prepared.plan.llm_kwargs, started, None,
            status="ERROR", error_type=_run.error_type_of(exc), error_message=str(exc),
        )  # fmt: skip
        return await self.store_record(workspace, record)

    async def call(self, workspace: int, call: PromptCall, log: _run.RunLog) -> tuple[Any, int]:
        """One non-streaming call: ``(the SDK's response, the stored request's id)``. A
        failed call is stored too, and its exception raised."""
        started = time.time()
        try:
            response = await call.worker.call(call.prepared.plan)
        except Exception as exc:
            await self._failed(workspace, call, log, started, exc)
            raise
        record = log.record(
            _run.new_request_id(), call.prepared, call.prepared.plan.llm_kwargs, started, response
        )
        return response, await self.store_record(workspace, record)

    async def stream(
        self, workspace: int, call: PromptCall, log: _run.RunLog
    ) -> AsyncIterator[dict[str, Any] | StreamEnd]:
        """The answer as it arrives: the answer message so far per chunk, then a
        :class:`StreamEnd`. However it ends (done, failed, closed early) the run is stored;
        a failure raises :class:`PromptRunError` carrying the stored request's id."""
        started = time.time()
        try:
            provider_stream = await call.worker.open_stream(call.prepared.plan)
        except Exception as exc:
            request_id = await self._failed(workspace, call, log, started, exc)
            raise PromptRunError(str(exc), request_id) from exc
        sink = _Collected()
        items = _run.stream(provider_stream, sink, call.prepared, log, started)
        stored: int | None = None
        try:
            async for item in items:
                message = item["prompt_blueprint"]["prompt_template"]["messages"][-1]
                if item["request_id"] is None:
                    yield message
                    continue
                stored = await self._store_all(workspace, sink)
                assert stored is not None  # the final item follows its record
                yield StreamEnd(message, stored, item["raw_response"])
        except Exception as exc:
            with anyio.CancelScope(shield=True):
                stored = await self._store_all(workspace, sink)
            raise PromptRunError(str(exc), stored) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await items.aclose()  # a stream stopped early logs what had arrived
                await self._store_all(workspace, sink)

    async def _store_all(self, workspace: int, sink: _Collected) -> int | None:
        last = None
        while sink.records:
            last = await self.store_record(workspace, sink.records.pop(0))
        return last


PROMPTS = web.AppKey("promptrun_prompt_runner", PromptRunner)
