"""From a template and its model to a provider call: kwargs, model resolution, function names."""

from __future__ import annotations

from typing import Any

from promptrun._errors import PromptLayerValidationError
from promptrun.blueprint import _anthropic, _google, _openai
from promptrun.blueprint._util import Json, family

__all__ = [
    "DEFAULT_MODELS",
    "apply_parameter_overrides",
    "build_llm_kwargs",
    "default_parameters",
    "function_name_for",
    "google_call_args",
    "resolve_model",
]

#: The model used when a run switches provider without naming a model.
DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "openai.azure": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-6",
    "google": "gemini-2.5-flash",
}

# Where each provider (and API) wants a max-tokens limit.
_MAX_TOKENS_NAMES = ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens")


def build_llm_kwargs(prompt_template: Json, model: Json) -> Json:
    """The provider SDK kwargs for a (rendered) template and its ``metadata.model``.

    Dispatches on ``model["provider"]`` (openai, openai.azure, anthropic, google),
    ``model["api_type"]`` (chat-completions, the default, or responses) and the template type.
    Parameters whose value is ``None`` are left out.
    """
    provider = model.get("provider") or ""
    kind = family(provider)
    if kind == "openai":
        return _openai.build(prompt_template, model)
    if kind == "anthropic":
        return _anthropic.build(prompt_template, model)
    return _google.build(prompt_template, model)


def google_call_args(llm_kwargs: Json) -> tuple[str, list[Any], Json]:
    """``(model, contents, config)`` for ``client.models.generate_content`` from Google kwargs."""
    return _google.call_args(llm_kwargs)


def default_parameters(provider: str, model_name: str | None = None) -> Json:
    """The parameters a provider needs when a run switches to it (Anthropic: ``max_tokens``)."""
    if family(provider) == "anthropic":
        return {"max_tokens": _anthropic.DEFAULT_MAX_TOKENS}
    return {}


def _max_tokens_name(provider: str, api_type: str | None) -> str:
    kind = family(provider)
    if kind == "anthropic":
        return "max_tokens"
    if kind == "google" or api_type == "responses":
        return "max_output_tokens"
    return "max_completion_tokens"


def resolve_model(template_model: Json, provider: str | None, model: str | None) -> Json:
    """The ``metadata.model`` a run uses after its ``provider`` / ``model`` overrides.

    Switching provider keeps only a max-tokens limit (renamed for the new provider) on top of
    its default parameters, and names the new provider's default model unless ``model`` is
    given: sampling parameters mean different things across providers, and some SDKs no
    longer accept them (anthropic 2.14 has no ``temperature``). A model override alone keeps
    everything else.
    """
    current = template_model.get("provider")
    if not provider or provider == current:
        if not model:
            return dict(template_model)
        return {**template_model, "name": model}
    family(provider)  # unsupported providers fail here, with the list of supported ones
    name = model or DEFAULT_MODELS.get(provider)
    if not name:
        raise PromptLayerValidationError(
            f"No default model for provider {provider!r}: pass model= as well."
        )
    old = template_model.get("parameters") or {}
    api_type = "chat-completions" if family(provider) == "openai" else None
    parameters = default_parameters(provider, name)
    for key in _MAX_TOKENS_NAMES:
        if old.get(key) is not None:
            parameters.pop("max_tokens", None)
            parameters[_max_tokens_name(provider, api_type)] = old[key]
            break
    return {
        **template_model,
        "provider": provider,
        "name": name,
        "parameters": parameters,
        "api_type": api_type,
    }


def apply_parameter_overrides(provider: str, llm_kwargs: Json, overrides: Json | None) -> Json:
    """A copy of ``llm_kwargs`` with ``model_parameter_overrides`` applied.

    OpenAI and Anthropic take them at the top level; Google inside ``generation_config``
    (with ``max_tokens`` and ``stop`` renamed to ``max_output_tokens`` and ``stop_sequences``).
    """
    if not overrides:
        return llm_kwargs
    if family(provider) != "google":
        return {**llm_kwargs, **overrides}
    key = (
        "config"
        if "config" in llm_kwargs and "generation_config" not in llm_kwargs
        else "generation_config"
    )
    config = {**(llm_kwargs.get(key) or {}), **_google.config_params(overrides)}
    return {**llm_kwargs, key: config}


_FUNCTION_NAMES: dict[tuple[str, str], str] = {
    ("openai", "chat"): "openai.chat.completions.create",
    ("openai", "completion"): "openai.completions.create",
    ("openai:responses", "chat"): "openai.responses.create",
    ("openai:responses", "completion"): "openai.responses.create",
    ("openai.azure", "chat"): "openai.AzureOpenAI.chat.completions.create",
    ("openai.azure", "completion"): "openai.AzureOpenAI.completions.create",
    ("openai.azure:responses", "chat"): "openai.AzureOpenAI.responses.create",
    ("openai.azure:responses", "completion"): "openai.AzureOpenAI.responses.create",
    ("anthropic", "chat"): "anthropic.messages.create",
    ("anthropic", "completion"): "anthropic.completions.create",
    ("anthropic.bedrock", "chat"): "anthropic.messages.create",
    ("anthropic.bedrock", "completion"): "anthropic.completions.create",
    ("google", "chat"): "google.convo.send_message",
    ("google", "completion"): "google.model.generate_content",
}


def function_name_for(provider: str, api_type: str | None, template_type: str | None) -> str:
    """The ``function_name`` a ``/track-request`` carries for this call, as PromptLayer names it."""
    key = f"{provider}:responses" if api_type == "responses" else provider
    name = _FUNCTION_NAMES.get((key, template_type or "chat"))
    if name is None:
        family(provider)
        raise PromptLayerValidationError(
            f"No function name for provider {provider!r} with api_type {api_type!r} "
            f"and template type {template_type!r}."
        )
    return name
