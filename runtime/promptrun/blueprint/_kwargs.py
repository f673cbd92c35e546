"""From a template and its model to a provider call: kwargs, model resolution, function names."""

from __future__ import annotations

from typing import Any

from promptrun._errors import PromptLayerValidationError
from promptrun.blueprint import _anthropic, _bedrock, _google, _openai
from promptrun.blueprint._util import Json, family, reader_family

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
    "vertexai": "gemini-2.5-flash",
    "anthropic.bedrock": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "mistral": "mistral-small-latest",
    "openrouter": "openai/gpt-4o-mini",
}

# Where each provider (and API) wants a max-tokens limit.
_MAX_TOKENS_NAMES = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "maxOutputTokens",
    "maxTokens",
)


def build_llm_kwargs(prompt_template: Json, model: Json) -> Json:
    """The provider SDK kwargs for a (rendered) template and its ``metadata.model``.

    Dispatches on ``model["provider"]`` (the OpenAI-shaped openai, openai.azure, mistral and
    openrouter; anthropic and anthropic.bedrock; google; vertexai as google or anthropic by
    model name; amazon.bedrock's Converse API), ``model["api_type"]`` (chat-completions, the
    default, or responses) and the template type. Parameters whose value is ``None`` are left
    out.
    """
    provider = model.get("provider") or ""
    kind = family(provider, model.get("name"))
    if kind == "openai":
        return _openai.build(prompt_template, model)
    if kind == "anthropic":
        return _anthropic.build(prompt_template, model)
    if kind == "bedrock":
        return _bedrock.build(prompt_template, model)
    return _google.build(prompt_template, model)


def google_call_args(llm_kwargs: Json) -> tuple[str, list[Any], Json]:
    """``(model, contents, config)`` for ``client.models.generate_content`` from Google kwargs."""
    return _google.call_args(llm_kwargs)


def default_parameters(provider: str, model_name: str | None = None) -> Json:
    """The parameters a provider needs when a run switches to it (Anthropic: ``max_tokens``)."""
    if family(provider, model_name) == "anthropic":
        return {"max_tokens": _anthropic.DEFAULT_MAX_TOKENS}
    return {}


def _max_tokens_name(provider: str, api_type: str | None, model_name: str | None) -> str:
    kind = family(provider, model_name)
    if kind == "anthropic" or provider == "mistral":
        return "max_tokens"
    if kind == "bedrock":
        return "maxTokens"
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
    api_type = "chat-completions" if family(provider, name) == "openai" else None
    parameters = default_parameters(provider, name)
    for key in _MAX_TOKENS_NAMES:
        if old.get(key) is not None:
            parameters.pop("max_tokens", None)
            parameters[_max_tokens_name(provider, api_type, name)] = old[key]
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
    (with ``max_tokens`` and ``stop`` renamed to ``max_output_tokens`` and ``stop_sequences``);
    Bedrock's Converse API in ``inferenceConfig`` (renamed likewise) or, for model-specific
    fields, ``additionalModelRequestFields``.
    """
    if not overrides:
        return llm_kwargs
    kind = family(provider)
    if provider == "vertexai":
        kind = reader_family(provider, llm_kwargs)
    if kind == "bedrock":
        return _bedrock.apply_overrides(llm_kwargs, overrides)
    if kind != "google":
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
    ("mistral", "chat"): "mistral.client.chat",
    ("mistral", "completion"): "mistral.client.chat",
    ("openrouter", "chat"): "openrouter.chat.send",
    ("openrouter", "completion"): "openrouter.chat.send",
    ("amazon.bedrock", "chat"): "boto3.bedrock-runtime.converse",
    ("amazon.bedrock", "completion"): "boto3.bedrock-runtime.converse",
}


def function_name_for(
    provider: str, api_type: str | None, template_type: str | None, model_name: Any = None
) -> str:
    """The ``function_name`` a ``/track-request`` carries for this call, as PromptLayer names it.

    ``vertexai`` calls are named as Google's or, for Claude models, Anthropic's.
    """
    if provider == "vertexai":
        provider = family(provider, model_name)
    key = f"{provider}:responses" if api_type == "responses" else provider
    name = _FUNCTION_NAMES.get((key, template_type or "chat"))
    if name is None:
        family(provider)
        raise PromptLayerValidationError(
            f"No function name for provider {provider!r} with api_type {api_type!r} "
            f"and template type {template_type!r}."
        )
    return name
