"""Prompts run by the server itself: workflow prompt nodes and the dashboard's playground.

Both go through the run pipeline (:mod:`promptrun.pipeline`), the one behind a client's
``run()``, with the server's own ends:

- the template is this server's registry's (:class:`StoreTemplates`: fetched from the store,
  or the version the caller already holds, as the playground does); one with placeholders is
  rendered here, and all rendering runs in a render thread under the server's budget;
- providers are called with **the server's own environment**, never a client's key
  (:func:`provider_route` says where each goes, in words a person can check): when the server
  runs its sandbox and has neither credentials nor a base URL for a provider, that provider's
  SDK is pointed at the server's own ``/sandbox`` with placeholder credentials, so prompts run
  offline out of the box;
- the record is stored in the workspace like any logged request before the run returns
  (:class:`StoreSink`), however the run ends.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from aiohttp import web

from promptrun import blueprint as bp
from promptrun._errors import PromptLayerValidationError
from promptrun._render_threads import run_rendering
from promptrun.blueprint._budget import metered
from promptrun.pipeline import (
    TABLE,
    Logged,
    LogOptions,
    Pipeline,
    PreparedRun,
    PromptRef,
    ProviderClients,
    ProviderRoutes,
    Renderer,
    Template,
    needs_server_rendering,
    warn_missing,
)
from promptrun.server._records import run_row
from promptrun.wire.ingest import TrackRecord

if TYPE_CHECKING:
    from promptrun.server.store.base import Store, TemplateVersion

__all__ = [
    "PROMPTS",
    "PromptCall",
    "PromptRunError",
    "PromptRunner",
    "ProviderRoute",
    "StoreSink",
    "StoreTemplates",
    "StreamEnd",
    "provider_route",
    "sandbox_origin",
]

log = logging.getLogger("promptrun.server")
T = TypeVar("T")


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


def provider_routes(origin: str | None) -> ProviderRoutes:
    """The pipeline's routes: the providers that go to this server's sandbox."""
    urls = {
        name: route.sandbox_url
        for name in TABLE
        if (route := provider_route(name, origin)).sandbox_url is not None
    }
    return ProviderRoutes(urls, frozenset(urls))


def _metered(budget: bp.RenderBudget, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` under ``budget`` (in a render thread)."""
    with metered(budget):
        return work(*args)


def _renderer(budget: bp.RenderBudget) -> Renderer:
    async def render(work: Callable[[], PreparedRun]) -> PreparedRun:
        return await run_rendering(_metered, budget, work)

    return render


class StoreTemplates:
    """Templates from this server's store, for one workspace."""

    def __init__(self, store: Store, workspace: int, budget: bp.RenderBudget) -> None:
        self._store = store
        self._workspace = workspace
        self._budget = budget

    async def template(self, ref: PromptRef, variables: dict[str, Any]) -> Template:
        """The stored version ``ref`` names (the store's NotFoundError if there is none)."""
        stored = await self._store.get_version(
            self._workspace, ref.name, version=ref.version, label=ref.label
        )
        return await self.of(stored, variables, provider=ref.provider, model=ref.model)

    async def of(
        self,
        stored: TemplateVersion,
        variables: Mapping[str, Any],
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> Template:
        """``stored`` as the registry answers it for a run (``provider`` and ``model`` as
        ``run()`` takes them); a version without a model runs only with a provider picked."""
        where = f"prompt template {stored.prompt_name!r} (version {stored.number})"
        stored_model = stored.metadata.get("model")
        if not isinstance(stored_model, dict) or not stored_model.get("provider"):
            if not provider:
                raise PromptLayerValidationError(
                    f"{where} has no metadata.model: publish it with a model, or pick a provider"
                )
            stored_model = {}  # the provider's default model and parameters
        resolved = bp.resolve_model(stored_model, provider, model)
        prompt_template = stored.prompt_template
        rendered = needs_server_rendering(prompt_template)
        if rendered:
            missing: list[str] = []
            render = functools.partial(bp.render_prompt_template, on_missing=missing.extend)
            try:
                prompt_template = await run_rendering(
                    _metered, self._budget, render, prompt_template, dict(variables)
                )
            except bp.RenderBudgetError as exc:
                raise exc.naming(where) from None
            warn_missing(log, stored.prompt_name, stored.number, missing, where=" on the server")
        body = {
            "id": stored.template_id,
            "version": stored.number,
            "prompt_name": stored.prompt_name,
            "prompt_template": prompt_template,
            "metadata": {**stored.metadata, "model": resolved},
            "llm_kwargs": bp.build_llm_kwargs(prompt_template, resolved),
            "provider_base_url": None,
        }
        return Template(body, rendered=rendered)


class StoreSink:
    """Records are stored in the workspace before the run returns.

    ``failed`` is the stored id of the last failed (or cut short) run's record; ``record``
    the last record. With ``span_id`` set (a traced workflow node's span), each record names
    that span, so the stored request links to its trace.
    """

    def __init__(self, store: Store, workspace: int) -> None:
        self._store = store
        self._workspace = workspace
        self.failed: int | None = None
        self.span_id: str | None = None
        self.record: TrackRecord | None = None

    def _mark(self, record: TrackRecord) -> None:
        self.record = record
        if self.span_id is not None:
            record.body["span_id"] = self.span_id

    async def log(self, record: TrackRecord) -> Logged:
        self._mark(record)
        return Logged(await self._store.insert_request(self._workspace, run_row(record)))

    async def log_failure(self, record: TrackRecord) -> None:
        self._mark(record)
        try:
            self.failed = await self._store.insert_request(self._workspace, run_row(record))
        except Exception:
            log.exception("storing the record of failed run %s failed", record.client_request_id)


@dataclass(frozen=True, slots=True)
class PromptCall:
    """A version rendered and planned, the pipeline that runs it, and where it goes."""

    prepared: PreparedRun
    route: ProviderRoute
    pipeline: Pipeline
    sink: StoreSink


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


class PromptRunner:
    """Runs registry prompts on the server: prepare, then call or stream; stores each run."""

    def __init__(self, store: Store, providers: ProviderClients, budget: bp.RenderBudget) -> None:
        self.store = store
        self.providers = providers
        self.budget = budget

    async def prepare(
        self,
        workspace: int,
        template: PromptRef | TemplateVersion,
        variables: Mapping[str, Any],
        *,
        origin: str | None,
        provider: str | None = None,
        model: str | None = None,
        parameter_overrides: dict[str, Any] | None = None,
    ) -> PromptCall:
        """Fetch (a :class:`PromptRef`) or take (a stored version) the template, render it
        with ``variables`` and plan the call; raises the store's NotFoundError, a
        RenderBudgetError naming the version past the budget, or a PromptLayerValidationError
        for a version that cannot run."""
        templates = StoreTemplates(self.store, workspace, self.budget)
        sink = StoreSink(self.store, workspace)
        pipeline = Pipeline(
            templates, self.providers, sink, provider_routes(origin), render=_renderer(self.budget)
        )
        given = dict(variables)
        if isinstance(template, PromptRef):
            ref = template
            found = await pipeline.template(ref, given)
        else:
            ref = PromptRef(template.prompt_name, template.number, None, provider, model)
            found = await templates.of(template, given, provider=provider, model=model)
        prepared = await pipeline.render(ref, found, given, parameter_overrides)
        return PromptCall(prepared, provider_route(prepared.plan.provider, origin), pipeline, sink)

    async def call(self, call: PromptCall, options: LogOptions) -> tuple[dict[str, Any], int]:
        """One non-streaming call: ``(the answer message, the stored request's id)``. A
        failed call is stored too, and its exception raised."""
        result = await call.pipeline.run(call.prepared, options)
        return result["prompt_blueprint"]["prompt_template"]["messages"][-1], result["request_id"]

    async def stream(
        self, call: PromptCall, options: LogOptions
    ) -> AsyncIterator[dict[str, Any] | StreamEnd]:
        """The answer as it arrives: the answer message so far per chunk, then a
        :class:`StreamEnd`. However it ends (done, failed, closed early) the run is stored;
        a failure raises :class:`PromptRunError` carrying the stored request's id."""
        try:
            items = await call.pipeline.stream(call.prepared, options)
        except Exception as exc:
            raise PromptRunError(str(exc), call.sink.failed) from exc
        try:
            async for item in items:
                message = item["prompt_blueprint"]["prompt_template"]["messages"][-1]
                if item["request_id"] is None:
                    yield message
                else:
                    yield StreamEnd(message, item["request_id"], item["raw_response"])
        except Exception as exc:
            raise PromptRunError(str(exc), call.sink.failed) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await items.aclose()  # a stream stopped early logs what had arrived


PROMPTS = web.AppKey("promptrun_prompt_runner", PromptRunner)
