"""Every provider a template may name: its SDK, its extra, its credentials, its sandbox.

Pure data, imported by ``import promptrun``: nothing here imports a provider SDK. The
clients map each name to an adapter (``_adapters``); error messages, ``promptrun serve``'s workflow
runs and the test helpers read the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROVIDERS", "SANDBOX_KEY", "TABLE", "ProviderInfo", "info"]

#: The placeholder key a sandboxed client sends (any non-empty key is accepted there).
SANDBOX_KEY = "promptrun-sandbox"


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What a user needs to know to run a provider, and where its sandbox lives."""

    name: str
    #: SDK modules the calls need, imported together at the first provider call.
    modules: tuple[str, ...]
    #: ``pip install 'promptrun[extra]'``
    extra: str
    #: Environment variables any of which configures credentials; the first is the one
    #: error messages name.
    key_vars: tuple[str, ...]
    #: What to export when it is missing.
    export: str
    #: The environment variable (or client option) that points the SDK at another server.
    base_var: str
    #: The path under ``promptrun serve`` whose URL is this provider's base URL.
    sandbox_path: str

    @property
    def key_var(self) -> str:
        return self.key_vars[0]


def _info(
    name: str,
    modules: tuple[str, ...],
    extra: str,
    key_vars: str,
    export: str,
    base_var: str,
    sandbox_path: str,
) -> ProviderInfo:
    return ProviderInfo(
        name, modules, extra, tuple(key_vars.split()), export, base_var, sandbox_path
    )


TABLE: dict[str, ProviderInfo] = {
    p.name: p
    for p in (
        _info(
            "openai", ("openai",), "openai", "OPENAI_API_KEY",
            "export OPENAI_API_KEY=...", "OPENAI_BASE_URL", "/sandbox/openai/v1",
        ),
        _info(
            "openai.azure", ("openai",), "openai", "AZURE_OPENAI_API_KEY AZURE_OPENAI_AD_TOKEN",
            "export AZURE_OPENAI_API_KEY=... OPENAI_API_VERSION=... AZURE_OPENAI_ENDPOINT=...",
            "AZURE_OPENAI_ENDPOINT", "/sandbox/azure",
        ),
        _info(
            "openrouter", ("openai",), "openrouter", "OPENROUTER_API_KEY",
            "export OPENROUTER_API_KEY=...", "OPENROUTER_BASE_URL",
            "/sandbox/openrouter/api/v1",
        ),
        _info(
            "mistral", ("mistralai.client",), "mistral", "MISTRAL_API_KEY",
            "export MISTRAL_API_KEY=...", "MISTRAL_BASE_URL", "/sandbox/mistral",
        ),
        _info(
            "anthropic", ("anthropic",), "anthropic", "ANTHROPIC_API_KEY",
            "export ANTHROPIC_API_KEY=...", "ANTHROPIC_BASE_URL", "/sandbox/anthropic",
        ),
        _info(
            "anthropic.bedrock", ("anthropic", "boto3"), "bedrock",
            "AWS_ACCESS_KEY_ID AWS_PROFILE AWS_BEARER_TOKEN_BEDROCK",
            "export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=... "
            "(or AWS_PROFILE=..., or any source of the AWS credential chain)",
            "ANTHROPIC_BEDROCK_BASE_URL", "/sandbox/bedrock",
        ),
        _info(
            "amazon.bedrock", ("boto3",), "bedrock", "AWS_ACCESS_KEY_ID AWS_PROFILE",
            "export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=... "
            "(or AWS_PROFILE=..., or any source of the AWS credential chain)",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "/sandbox/bedrock",
        ),
        _info(
            "google", ("google.genai",), "google", "GEMINI_API_KEY GOOGLE_API_KEY",
            "export GEMINI_API_KEY=... (or GOOGLE_API_KEY=...)", "GOOGLE_GEMINI_BASE_URL",
            "/sandbox/google",
        ),
        _info(
            "vertexai", ("google.genai", "anthropic", "google.auth"), "vertex",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "export GOOGLE_APPLICATION_CREDENTIALS=/path/to/credentials.json "
            "GOOGLE_CLOUD_PROJECT=... GOOGLE_CLOUD_LOCATION=... "
            "(or run `gcloud auth application-default login`)",
            "GOOGLE_VERTEX_BASE_URL", "/sandbox/vertex",
        ),
    )
}  # fmt: skip

#: The provider names ``run()`` accepts (``metadata.model.provider`` of a template).
PROVIDERS: tuple[str, ...] = tuple(TABLE)


def info(provider: str) -> ProviderInfo | None:
    """The table entry of ``provider``, or None for a name promptrun does not call."""
    return TABLE.get(provider)
