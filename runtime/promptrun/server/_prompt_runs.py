"""The server's ends of the run pipeline (:mod:`promptrun.pipeline`): a prompt run on the server.

Workflow prompt nodes run a registry prompt exactly as a client's ``run()`` does, through the
same pipeline, with the server's own ends:

- :class:`StoreTemplates`, the template source: this server's registry (its store), the
  template as ``POST /prompt-templates/{name}`` answers it; one with placeholders is rendered
  here, in a render thread under the server's budget.
- :class:`StoreSink`, the record sink: the record is stored like any logged request, in the
  workspace, before the run returns.
- Providers are called with **the server's own environment** (never a client's key), or, for
  a provider with neither credentials nor a base URL there, this server's own sandbox
  (:meth:`~promptrun.pipeline.ProviderRoutes.sandbox_fallback`). Rendering runs in the render
  threads, under the server's budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from promptrun import blueprint as bp
from promptrun._errors import PromptLayerValidationError
from promptrun._render_threads import run_rendering
from promptrun.blueprint._budget import metered
from promptrun.pipeline import (
    Logged,
    Pipeline,
    PreparedRun,
    PromptRef,
    ProviderClients,
    ProviderRoutes,
    Renderer,
    Template,
    needs_server_rendering,
)
from promptrun.server._records import run_row
from promptrun.wire.ingest import TrackRecord

if TYPE_CHECKING:
    from promptrun.server.store.base import Store

__all__ = ["StoreSink", "StoreTemplates", "server_pipeline"]

log = logging.getLogger("promptrun.server")
T = TypeVar("T")


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
        where = f"prompt template {stored.prompt_name!r} (version {stored.number})"
        stored_model = stored.metadata.get("model")
        if not isinstance(stored_model, dict) or not stored_model.get("provider"):
            raise PromptLayerValidationError(
                f"{where} has no metadata.model: publish it with a model"
            )
        model = bp.resolve_model(stored_model, ref.provider, ref.model)
        prompt_template = stored.prompt_template
        rendered = needs_server_rendering(prompt_template)
        if rendered:
            try:
                prompt_template = await run_rendering(
                    _metered, self._budget, bp.render_prompt_template, prompt_template, variables
                )
            except bp.RenderBudgetError as exc:
                raise exc.naming(where) from None
        body = {
            "id": stored.template_id,
            "version": stored.number,
            "prompt_name": stored.prompt_name,
            "prompt_template": prompt_template,
            "metadata": {**stored.metadata, "model": model},
            "llm_kwargs": bp.build_llm_kwargs(prompt_template, model),
            "provider_base_url": None,
        }
        return Template(body, rendered=rendered)


def _metered(budget: bp.RenderBudget, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` under ``budget`` (in a render thread)."""
    with metered(budget):
        return work(*args)


def _renderer(budget: bp.RenderBudget) -> Renderer:
    async def render(work: Callable[[], PreparedRun]) -> PreparedRun:
        return await run_rendering(_metered, budget, work)

    return render


class StoreSink:
    """Records are stored in the workspace before the run returns."""

    def __init__(self, store: Store, workspace: int) -> None:
        self._store = store
        self._workspace = workspace

    async def log(self, record: TrackRecord) -> Logged:
        return Logged(await self._store.insert_request(self._workspace, run_row(record)))

    async def log_failure(self, record: TrackRecord) -> None:
        try:
            await self._store.insert_request(self._workspace, run_row(record))
        except Exception:
            log.exception("storing the record of failed run %s failed", record.client_request_id)


def server_pipeline(
    store: Store,
    workspace: int,
    providers: ProviderClients,
    *,
    origin: str | None,
    budget: bp.RenderBudget,
) -> Pipeline:
    """The pipeline for one workspace's prompt runs; ``origin`` is this server's own URL
    (for the sandbox fallback), as the request that started the run reached it."""
    return Pipeline(
        StoreTemplates(store, workspace, budget),
        providers,
        StoreSink(store, workspace),
        ProviderRoutes.sandbox_fallback(origin),
        render=_renderer(budget),
    )
