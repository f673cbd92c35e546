"""The mistralai SDK: Mistral's chat completions.

Why the mistralai SDK and not Mistral's OpenAI-compatible endpoint through the openai SDK:
it is what Mistral users already have and what the PromptLayer SDK calls, so ``raw_response``
keeps the shapes code written for the peer reads (a ``ChatCompletionResponse``; stream items
that are ``CompletionEvent`` objects with ``.data``), and Mistral's own parameters
(``random_seed``, ``safe_prompt``, ``prompt_mode``) are first-class instead of riding in
``extra_body``. Its usage arrives in every stream without asking.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from promptrun.pipeline.providers._base import (
    Adapter,
    CallPlan,
    KeyProblem,
    accepted_params,
    status_of,
)
from promptrun.pipeline.providers._table import SANDBOX_KEY

__all__ = ["MistralAdapter"]

logger = logging.getLogger("promptlayer")


def _mistral_class() -> Any:
    try:
        from mistralai.client import Mistral  # mistralai 2 and later
    except ImportError:
        from mistralai import Mistral  # type: ignore[attr-defined,no-redef]  # mistralai 1.x
    return Mistral


class MistralAdapter(Adapter):
    """``chat.complete_async`` and ``chat.stream_async``; the key is ``MISTRAL_API_KEY``."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._accepted: frozenset[str] | None = None
        self._warned: set[str] = set()

    async def open(self, base_url: str | None, plan: CallPlan, sandbox: bool) -> Any:
        key = SANDBOX_KEY if sandbox else os.environ.get("MISTRAL_API_KEY")
        server_url = base_url or os.environ.get("MISTRAL_BASE_URL")
        return _mistral_class()(api_key=key, server_url=server_url)

    def _kwargs(self, client: Any, plan: CallPlan) -> dict[str, Any]:
        kwargs = dict(plan.llm_kwargs)
        if "max_completion_tokens" in kwargs and "max_tokens" not in kwargs:
            kwargs["max_tokens"] = kwargs.pop("max_completion_tokens")
        if self._accepted is None:
            self._accepted = accepted_params(client.chat.complete_async) or frozenset(kwargs)
        unknown = [k for k in kwargs if k not in self._accepted and k != "stream"]
        for key in unknown:
            if key not in self._warned:
                self._warned.add(key)
                logger.warning(
                    "the installed mistralai SDK has no %r parameter; it is left out of "
                    "Mistral calls",
                    key,
                )
            kwargs.pop(key)
        return kwargs

    async def call(self, client: Any, plan: CallPlan) -> Any:
        return await client.chat.complete_async(**self._kwargs(client, plan))

    async def stream(self, client: Any, plan: CallPlan) -> AsyncIterator[Any]:
        return await client.chat.stream_async(**self._kwargs(client, plan))  # type: ignore[no-any-return]

    async def close(self, client: Any) -> None:
        aexit = getattr(client, "__aexit__", None)
        if aexit is not None:
            await aexit(None, None, None)

    def key_problem(self, exc: BaseException) -> KeyProblem | None:
        status = status_of(exc)
        if status in (401, 403) and type(exc).__module__.startswith("mistralai"):
            return KeyProblem("refused", self.info.key_var, status)
        return None
