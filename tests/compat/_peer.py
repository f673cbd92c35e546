"""Sample templates for the peer SDK, and a reader of what the server stored."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from promptlayer import PromptLayer

from promptrun.testing import RunningServer

# Models none of the provider SDKs consider deprecated (they warn, and warnings are errors).
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
GOOGLE_MODEL = "gemini-2.5-flash"

GREETING = {"name": "Ada", "topic": "tea"}


def chat(user_text: str = "Hello {name}, about {topic}", template_format: str = "f-string") -> Any:
    """A chat template: a terse system message and one user message with variables."""
    return {
        "type": "chat",
        "input_variables": ["name", "topic"],
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "You are terse."}],
                "template_format": template_format,
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": user_text}],
                "template_format": template_format,
            },
        ],
    }


MODELS: dict[str, dict[str, Any]] = {
    "openai": {"provider": "openai", "name": OPENAI_MODEL, "parameters": {"temperature": 0.5}},
    # anthropic 2.x's messages.create takes no temperature or top_p.
    "anthropic": {
        "provider": "anthropic",
        "name": ANTHROPIC_MODEL,
        "parameters": {"max_tokens": 256},
    },
    "google": {"provider": "google", "name": GOOGLE_MODEL, "parameters": {"temperature": 0.5}},
}


def publish(
    pl: PromptLayer,
    name: str,
    provider: str = "openai",
    *,
    template: Any = None,
    model: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    **extra: Any,
) -> Any:
    """Publish a version through the peer's own ``templates.publish``."""
    return pl.templates.publish(
        {
            "prompt_name": name,
            "prompt_template": chat() if template is None else template,
            "metadata": {"model": MODELS[provider] if model is None else model},
            "commit_message": f"{provider} version",
            "release_labels": labels or [],
            **extra,
        }
    )


def publish_provider_templates(pl: PromptLayer) -> None:
    """One template per provider, named after it, labelled ``prod``."""
    for provider in MODELS:
        assert publish(pl, provider, provider, labels=["prod"])["version_number"] == 1


class StoredLog:
    """Reads the server's request log through its own read API (``/promptrun/v1/requests``)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.server.base_url + path, headers={"X-API-KEY": self.server.api_key}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def request(self, request_id: int) -> dict[str, Any]:
        """The full record: body, prompt_blueprint, scores, metadata, groups."""
        return self._get(f"/promptrun/v1/requests/{request_id}")  # type: ignore[no-any-return]

    def latest(self) -> dict[str, Any]:
        """The newest record in full."""
        page = self._get("/promptrun/v1/requests?limit=1")
        assert page["items"], "the server stored no request"
        return self.request(page["items"][0]["id"])

    def total(self) -> int:
        return self._get("/promptrun/v1/requests?limit=1")["total"]  # type: ignore[no-any-return]

    def sandbox(self, control: dict[str, Any]) -> dict[str, Any]:
        """POST to the sandbox's control endpoint (queue failures, reset)."""
        request = urllib.request.Request(
            self.server.base_url + "/sandbox/_control",
            data=json.dumps(control).encode(),
            headers={"Content-Type": "application/json", "X-API-KEY": self.server.api_key},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def sandbox_reset(self) -> None:
        request = urllib.request.Request(
            self.server.base_url + "/sandbox/_control",
            headers={"X-API-KEY": self.server.api_key},
            method="DELETE",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


def assistant_text(record: dict[str, Any]) -> str:
    """The text of the last (assistant) message of a stored record's blueprint."""
    messages = record["prompt_blueprint"]["prompt_template"]["messages"]
    assert messages[-1]["role"] == "assistant", messages
    return "".join(part.get("text", "") for part in messages[-1]["content"])
