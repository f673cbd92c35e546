"""Fixtures for the peer SDK suite: one promptrun server per module, provider env, clients.

The peer caches provider clients process-wide, keyed by what its template response carries
(empty here) rather than by the environment, so a client built for an earlier server, or
bound to an earlier test's event loop, would be reused. Every test therefore starts and ends
with that cache emptied, and the clients it held closed (async ones on their own loop).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from promptlayer import AsyncPromptLayer, PromptLayer
from promptlayer import utils as peer_utils

from promptrun.testing import RunningServer, running_server

from ._peer import StoredLog, publish_provider_templates


def _drain_peer_clients() -> list[Any]:
    cache = peer_utils._llm_client_cache
    clients = list(cache.values())
    cache.clear()
    return clients


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None and not inspect.iscoroutinefunction(close):
        close()


async def _aclose(client: Any) -> None:
    aio = getattr(client, "aio", None)  # google-genai: one client, a separate async half
    if aio is not None:
        await aio.aclose()
    close = getattr(client, "close", None)
    if close is None:
        return
    if inspect.iscoroutinefunction(close):
        await close()
    else:
        close()


@pytest.fixture(scope="module")
def peer_server() -> Iterator[RunningServer]:
    """One server per module, with one template per provider (``openai``, ...) published."""
    with running_server(sandbox=True) as srv:
        publish_provider_templates(PromptLayer(api_key=srv.api_key, base_url=srv.base_url))
        yield srv


@pytest.fixture(autouse=True)
def provider_env(peer_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point every provider SDK at the module server's sandbox; fresh peer provider clients."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", peer_server.sandbox_url("openai"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-sandbox")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", peer_server.sandbox_url("anthropic"))
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-sandbox")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", peer_server.sandbox_url("google"))
    for name in ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "OPENAI_ORG_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PROMPTLAYER_API_KEY", raising=False)
    monkeypatch.delenv("PROMPTLAYER_BASE_URL", raising=False)
    for client in _drain_peer_clients():
        _close(client)
    yield
    for client in _drain_peer_clients():
        _close(client)


@pytest.fixture
def pl(peer_server: RunningServer) -> PromptLayer:
    return PromptLayer(api_key=peer_server.api_key, base_url=peer_server.base_url)


@pytest.fixture
async def apl(peer_server: RunningServer) -> AsyncIterator[AsyncPromptLayer]:
    """The async peer; afterwards the provider clients it made are closed on this test's loop."""
    yield AsyncPromptLayer(api_key=peer_server.api_key, base_url=peer_server.base_url)
    for client in _drain_peer_clients():
        await _aclose(client)


@pytest.fixture
def stored(peer_server: RunningServer) -> StoredLog:
    return StoredLog(peer_server)
