"""Every public method of both clients keeps the short traceback: a PromptLayer-side error
(here a 400 from the API) shows the caller's frame, the public method and the error, never
the frames of the retry loop, the HTTP edge or the portal it passed through."""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from promptrun import AsyncPromptLayer, PromptLayer, PromptLayerBadRequestError
from promptrun._boundary import public

from .._registry_stub import StubRegistry, stub_registry

# Where a short traceback must not go (file names, and the packages it passed through).
HIDDEN = ("stamina", "tenacity", "anyio", "_retry.py", "_http.py", "_portal.py")
# Public callables that never ask the API, so there is no PromptLayer-side error to show.
LOCAL = {"flush", "stats", "invalidate", "templates.invalidate", "traceable"}
CLOSE = {PromptLayer: "close", AsyncPromptLayer: "aclose"}
NOW = time.time()
CHAT = {"type": "chat", "messages": [{"role": "user", "content": "hi"}]}
WORKFLOW = {"workflow_name": "w", "definition": {"nodes": []}}

# Each public method the API can refuse, with arguments that reach the API.
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "run": (("greet",), {}),
    "run_workflow": (("flow",), {}),
    "log_request": (("openai", "gpt-4o-mini", CHAT, CHAT, NOW, NOW), {}),
    "templates.get": (("greet",), {}),
    "templates.all": ((), {}),
    "templates.publish": (({"prompt_name": "greet", "prompt_template": {}},), {}),
    "workflows.publish": ((WORKFLOW,), {}),
    "track.metadata": ((1, {"k": "v"}), {}),
    "track.score": ((1, 90), {}),
    "track.prompt": ((1, "greet", {}), {}),
    "track.group": ((1, 2), {}),
    "group.create": ((), {}),
}


def public_callables(client: Any) -> dict[str, Callable[..., Any]]:
    """Every public method of a client and of its managers, by dotted name."""
    found: dict[str, Callable[..., Any]] = {}
    for prefix, owner in [("", client)] + [
        (f"{m}.", getattr(client, m)) for m in ("templates", "workflows", "track", "group")
    ]:
        for name, value in inspect.getmembers(type(owner)):
            if not name.startswith("_") and callable(value) and not isinstance(value, type):
                found[prefix + name] = getattr(owner, name)
    return found


def hidden_frames(exc: BaseException) -> list[str]:
    text = "".join(traceback.format_exception(exc))
    return [h for h in HIDDEN if h in text]


@pytest.fixture
def refusing() -> Iterator[StubRegistry]:
    with stub_registry() as registry:
        registry.refuse = 400
        yield registry


def _client_kwargs(registry: StubRegistry, tmp_path: Path) -> dict[str, Any]:
    # inline_logging: log_request and track.* wait for the API, as the peer SDK's do.
    return {
        "api_key": "pl_test",
        "base_url": registry.base_url,
        "spool_dir": tmp_path,
        "inline_logging": True,
    }


def test_every_public_method_is_covered_here_and_wears_the_public_boundary(
    tmp_path: Path,
) -> None:
    for client in (
        PromptLayer(api_key="pl_x", base_url="http://127.0.0.1:9", spool_dir=tmp_path),
        AsyncPromptLayer(api_key="pl_x", base_url="http://127.0.0.1:9", spool_dir=tmp_path),
    ):
        methods = public_callables(client)
        assert set(methods) == set(CALLS) | LOCAL | {CLOSE[type(client)]}, type(client).__name__
        for name in CALLS:
            # public() wraps with functools.wraps, whose wrapper's code is public()'s own.
            wrapped = methods[name].__func__  # type: ignore[attr-defined]
            assert wrapped.__code__.co_filename == public.__code__.co_filename, name
        if isinstance(client, PromptLayer):
            client.close()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_refusal_from_the_sync_clients_public_method_has_a_short_traceback(
    name: str, refusing: StubRegistry, tmp_path: Path
) -> None:
    args, kwargs = CALLS[name]
    with PromptLayer(**_client_kwargs(refusing, tmp_path)) as pl:
        method = public_callables(pl)[name]
        with pytest.raises(PromptLayerBadRequestError) as caught:
            method(*args, **kwargs)
    assert hidden_frames(caught.value) == []
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert [Path(f.filename).name for f in frames] == [Path(__file__).name, "_sync.py"]
    assert frames[1].name == name.rsplit(".", 1)[-1]


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.anyio
async def test_a_refusal_from_the_async_clients_public_method_has_a_short_traceback(
    name: str, refusing: StubRegistry, tmp_path: Path
) -> None:
    args, kwargs = CALLS[name]
    async with AsyncPromptLayer(**_client_kwargs(refusing, tmp_path)) as pl:
        method = public_callables(pl)[name]
        with pytest.raises(PromptLayerBadRequestError) as caught:
            await method(*args, **kwargs)
    assert hidden_frames(caught.value) == []
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert len(frames) == 2
    assert frames[1].name == name.rsplit(".", 1)[-1]


def test_a_refused_sync_stream_has_a_short_traceback(
    refusing: StubRegistry, tmp_path: Path
) -> None:
    with (
        PromptLayer(**_client_kwargs(refusing, tmp_path)) as pl,
        pytest.raises(PromptLayerBadRequestError) as caught,
    ):
        for _ in pl.run("greet", stream=True):
            pass
    assert hidden_frames(caught.value) == []
