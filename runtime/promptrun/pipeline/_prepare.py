"""The render stage, pure: a template and the caller's variables become a planned provider call.

:func:`prepare` renders the unrendered template (under the default rendering budget unless
the caller meters it with another, so a hostile template fails with a RenderBudgetError
naming it instead of hanging the caller), applies the caller's parameter overrides, and
decides what to call and where (:class:`~promptrun.pipeline.ProviderRoutes`). It does no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promptrun import blueprint
from promptrun._errors import PromptLayerValidationError
from promptrun.pipeline._missing import warn_missing
from promptrun.pipeline.providers import CallPlan, split_client_options

__all__ = ["PreparedRun", "ProviderRoutes", "Template", "needs_server_rendering", "prepare"]

logger = logging.getLogger("promptlayer")


@dataclass(frozen=True, slots=True)
class Template:
    """A template as a registry answers it (``prompt_template``, ``llm_kwargs``, ``metadata``
    with its model, ``id``, ``version``, ``provider_base_url``).

    ``rendered``: the registry already rendered it with the run's variables (templates with
    placeholders, whose kwargs only a registry can rebuild); the render stage then uses it
    as it is.
    """

    body: dict[str, Any]
    rendered: bool = False


@dataclass(frozen=True, slots=True)
class ProviderRoutes:
    """Where providers are reached when a template names no ``provider_base_url``.

    ``base_urls``: provider -> base URL (None for a provider means its SDK's default, or its
    own environment variable). ``sandboxed``: providers whose base URL is ``promptrun
    serve``'s sandbox, called with placeholder credentials.
    """

    base_urls: Mapping[str, str] = field(default_factory=dict)
    sandboxed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A rendered run: the call to make, and what its log record needs."""

    plan: CallPlan
    function_name: str
    model: dict[str, Any]
    input_messages: list[Any]
    template: dict[str, Any]
    variables: dict[str, Any]
    rendered_template: dict[str, Any]


def needs_server_rendering(prompt_template: Mapping[str, Any]) -> bool:
    """Placeholders splice whole messages in: only a registry can rebuild the kwargs then."""
    messages = prompt_template.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "placeholder" for m in messages
    )


def _template_format(prompt_template: Mapping[str, Any]) -> str:
    messages = prompt_template.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return str(messages[0].get("template_format") or "f-string")
    return str(prompt_template.get("template_format") or "f-string")


def prepare(
    name: str,
    template: Template,
    variables: dict[str, Any],
    parameter_overrides: Mapping[str, Any] | None,
    routes: ProviderRoutes,
    *,
    strict: bool = False,
) -> PreparedRun:
    """Render ``template`` with ``variables`` and decide the provider call.

    A variable the template uses but ``variables`` lacks renders empty, with one WARNING per
    template version (see :mod:`._missing`); ``strict`` raises MissingVariablesError instead.
    """
    body = template.body
    llm_kwargs = body.get("llm_kwargs")
    metadata = body.get("metadata") or {}
    model = metadata.get("model") if isinstance(metadata, dict) else None
    prompt_template = body.get("prompt_template")
    where = f"prompt template {name!r} (version {body.get('version')})"
    if not isinstance(llm_kwargs, dict) or not llm_kwargs:
        raise PromptLayerValidationError(f"{where} has no llm_kwargs: publish it with a model")
    if not isinstance(model, dict) or not model.get("provider"):
        raise PromptLayerValidationError(
            f"{where} has no metadata.model.provider: publish it with metadata "
            '{"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}'
        )
    if not isinstance(prompt_template, dict):
        raise PromptLayerValidationError(f"{where} has no prompt_template")
    provider = str(model["provider"])
    if template.rendered:
        rendered, kwargs = prompt_template, llm_kwargs
    else:
        missing: list[str] = []
        on_missing = None if strict else missing.extend
        try:
            rendered = blueprint.render_prompt_template(
                prompt_template, variables, on_missing=on_missing
            )
            kwargs = blueprint.render_llm_kwargs(
                provider,
                llm_kwargs,
                variables,
                _template_format(prompt_template),
                on_missing=on_missing,
            )
        except (blueprint.RenderBudgetError, blueprint.MissingVariablesError) as exc:
            # A template from a shared registry is someone else's code: say whose.
            raise exc.naming(where) from None
        warn_missing(logger, name, body.get("version"), missing)
    if parameter_overrides:
        kwargs = blueprint.apply_parameter_overrides(provider, kwargs, dict(parameter_overrides))
    if "stream" in kwargs or "stream_options" in kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("stream", "stream_options")}
    kwargs, client_options = split_client_options(provider, kwargs)
    api_type = model.get("api_type")
    template_type = str(prompt_template.get("type") or "chat")
    named = body.get("provider_base_url")
    base_url = named.get("url") if isinstance(named, dict) else None
    sandbox = False
    if not base_url:
        base_url = routes.base_urls.get(provider)
        sandbox = provider in routes.sandboxed
    if template_type == "chat":
        input_messages = [_as_logged(m) for m in rendered.get("messages") or ()]
    else:
        input_messages = [
            _as_logged({"role": "user", "content": list(rendered.get("content") or [])})
        ]
    plan = CallPlan(
        provider, api_type, template_type, kwargs, client_options, name, base_url or None, sandbox
    )
    return PreparedRun(
        plan=plan,
        function_name=blueprint.function_name_for(
            provider, api_type, template_type, model.get("name")
        ),
        model=model,
        input_messages=input_messages,
        template=body,
        variables=variables,
        rendered_template=rendered,
    )


def _as_logged(message: Any) -> Any:
    """A rendered message as the server's blueprint of a logged request shows it."""
    if not isinstance(message, dict):
        return message
    return {**message, "input_variables": [], "template_format": "f-string"}
