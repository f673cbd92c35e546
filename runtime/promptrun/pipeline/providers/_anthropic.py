"""The anthropic SDK: Anthropic's API, Claude on Bedrock, and (for vertexai) Claude on Vertex."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from promptrun.pipeline.providers._base import (
    Adapter,
    CallPlan,
    KeyProblem,
    KwargsFitter,
    Wire,
    aiohttp_client,
    status_of,
)
from promptrun.pipeline.providers._table import SANDBOX_KEY

__all__ = ["AnthropicAdapter", "BedrockAnthropicAdapter", "anthropic_key_problem"]

# Fake but well-formed AWS credentials: the sandbox checks a SigV4 signature is there.
SANDBOX_AWS = {"aws_access_key": "AKIAPROMPTRUNSANDBOX", "aws_secret_key": SANDBOX_KEY}
SANDBOX_REGION = "us-east-1"


def _method(client: Any, plan: CallPlan) -> Any:
    if plan.template_type == "completion" and "messages" not in plan.llm_kwargs:
        return client.completions.create
    return client.messages.create


_fit_to_sdk = KwargsFitter("anthropic")


async def anthropic_call(client: Any, plan: CallPlan) -> Any:
    method = _method(client, plan)
    return await method(**_fit_to_sdk(method, plan.llm_kwargs))


async def anthropic_stream(client: Any, plan: CallPlan) -> AsyncIterator[Any]:
    method = _method(client, plan)
    return await method(**_fit_to_sdk(method, {**plan.llm_kwargs, "stream": True}))  # type: ignore[no-any-return]


def anthropic_key_problem(exc: BaseException, key_var: str) -> KeyProblem | None:
    """Missing key (the SDK's TypeError) or a 401 from Anthropic's API."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        status = status_of(exc)
        return KeyProblem("refused", key_var, status) if status in (401, 403) else None
    if isinstance(exc, TypeError) and "authentication" in str(exc):
        return KeyProblem("missing", key_var)
    return None


class AnthropicAdapter(Adapter):
    """Messages (and legacy Completions) through ``AsyncAnthropic``."""

    wire_providers = frozenset({"anthropic"})
    wire_module = "promptrun.pipeline.providers._anthropic_native"

    def open_wire(self, session: Any, base_url: str | None, sandbox: bool) -> Wire | None:
        if self.provider not in self.wire_providers:
            return None
        key = SANDBOX_KEY if sandbox else os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            return None  # ANTHROPIC_AUTH_TOKEN, other credentials: the SDK
        from promptrun.pipeline.providers._anthropic_native import AnthropicWire, sdk_verified

        if not sdk_verified():
            return None  # an SDK older than the one the differential suite checks: the SDK

        return AnthropicWire(session, base_url, key)

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        import anthropic

        key = SANDBOX_KEY if sandbox else None
        return anthropic.AsyncAnthropic(
            base_url=base_url, api_key=key, http_client=aiohttp_client(anthropic)
        )

    async def call(self, client: Any, plan: CallPlan) -> Any:
        return await anthropic_call(client, plan)

    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        return await anthropic_stream(client, plan)

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        return anthropic_key_problem(exc, self.info.key_var)


class BedrockAnthropicAdapter(AnthropicAdapter):
    """Claude on Amazon Bedrock (InvokeModel) through ``AsyncAnthropicBedrock``.

    Credentials come from the AWS chain (environment, profile, instance role), or from the
    template's ``llm_kwargs`` as the PromptLayer SDK reads them: ``aws_access_key``,
    ``aws_secret_key``, ``aws_session_token``, ``aws_region`` and ``base_url`` (this last one
    wins over the template's ``provider_base_url``, never passed twice).
    """

    client_option_keys = frozenset(
        {"aws_access_key", "aws_secret_key", "aws_session_token", "aws_region", "base_url"}
    )

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        import anthropic

        options = dict(plan.client_options)
        base = options.pop("base_url", None) or base_url
        if sandbox:
            options = {**SANDBOX_AWS, "aws_region": SANDBOX_REGION, **options}
        return anthropic.AsyncAnthropicBedrock(
            base_url=base, http_client=aiohttp_client(anthropic), **options
        )

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        if isinstance(exc, RuntimeError) and "AWS credentials" in str(exc):
            return KeyProblem("missing", self.info.key_var)
        if isinstance(exc, ValueError) and "AWS region" in str(exc):
            return KeyProblem("missing", "AWS_REGION")
        return anthropic_key_problem(exc, self.info.key_var)
