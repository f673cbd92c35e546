"""A PromptLayer-side error reaches the caller with a short traceback: the caller's frame,
promptrun's public method, the error (and its cause in one frame); not the 20-odd frames of the
portal, the retry loop and the HTTP edge it passed through."""

from __future__ import annotations

import socket
import traceback
from pathlib import Path

import pytest

from promptrun import (
    AsyncPromptLayer,
    PromptLayer,
    PromptLayerAPIConnectionError,
    PromptLayerNotFoundError,
    PromptLayerValidationError,
)
from promptrun.testing import RunningServer

HERE = Path(__file__).name


def frames(exc: BaseException) -> list[tuple[str, str]]:
    return [(Path(f.filename).name, f.name) for f in traceback.extract_tb(exc.__traceback__)]


def test_a_404_from_the_sync_client_shows_the_callers_frame_and_templates_get(
    session_server: RunningServer, tmp_path: Path
) -> None:
    with PromptLayer(
        api_key=session_server.api_key, base_url=session_server.base_url, spool_dir=tmp_path
    ) as pl:
        with pytest.raises(PromptLayerNotFoundError) as caught:
            pl.templates.get("no-such-template")
        assert frames(caught.value) == [
            (HERE, "test_a_404_from_the_sync_client_shows_the_callers_frame_and_templates_get"),
            ("_sync.py", "get"),
        ]
        with pytest.raises(PromptLayerNotFoundError) as caught:
            pl.run("no-such-template")
        assert [name for _, name in frames(caught.value)][1:] == ["run"]
        text = "".join(traceback.format_exception(caught.value))
        assert "tenacity" not in text and "anyio" not in text and "stamina" not in text
        assert "no-such-template" in text


@pytest.mark.anyio
async def test_a_404_from_the_async_client_shows_the_callers_frame_and_templates_get(
    session_server: RunningServer, tmp_path: Path
) -> None:
    async with AsyncPromptLayer(
        api_key=session_server.api_key, base_url=session_server.base_url, spool_dir=tmp_path
    ) as pl:
        with pytest.raises(PromptLayerNotFoundError) as caught:
            await pl.templates.get("no-such-template")
        assert frames(caught.value) == [
            (HERE, "test_a_404_from_the_async_client_shows_the_callers_frame_and_templates_get"),
            ("_client.py", "get"),
        ]
        with pytest.raises(PromptLayerNotFoundError) as caught:
            await pl.run("no-such-template")
        assert [name for _, name in frames(caught.value)][1:] == ["run"]


@pytest.mark.anyio
async def test_a_connection_error_keeps_its_cause_in_one_frame(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    async with AsyncPromptLayer(
        api_key="pl_x", base_url=f"http://127.0.0.1:{port}", spool_dir=tmp_path
    ) as pl:
        with pytest.raises(PromptLayerAPIConnectionError) as caught:
            await pl.templates.all()
    assert len(frames(caught.value)) == 2
    cause = caught.value.__cause__
    assert cause is not None
    assert len(traceback.extract_tb(cause.__traceback__)) <= 1
    assert f"127.0.0.1:{port}" in "".join(traceback.format_exception(caught.value))


def test_a_validation_error_points_at_the_public_method(tmp_path: Path) -> None:
    with (
        PromptLayer(api_key="pl_x", base_url="http://127.0.0.1:9", spool_dir=tmp_path) as pl,
        pytest.raises(PromptLayerValidationError) as caught,
    ):
        pl.templates.get("", None)
    assert [name for _, name in frames(caught.value)][1:] == ["get"]
