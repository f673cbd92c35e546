"""A ``spool_dir`` shared by clients of different servers or keys (staging and production, two
tenants): each record only ever ships to the server and key it was made for; records an
earlier version left in the folder itself are not shipped to whoever comes next."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from promptrun import AsyncPromptLayer
from promptrun._config import spool_folder
from promptrun._logreq import build_log_record
from promptrun.actors._spool import Spool
from promptrun.pipeline import encode_record
from promptrun.testing import RunningServer

from .._clients import Probe, spooled

pytestmark = pytest.mark.anyio

CHAT = {"type": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
DOWN = "http://127.0.0.1:9"


def log_args(tag: str) -> tuple[object, ...]:
    return ("openai", "m", CHAT, CHAT, 1.0, 2.0, None, [tag], None, None, None, None, 0, 0,
            0.0, "", 0, None, None, None, "SUCCESS", None, None)  # fmt: skip


def write_flat_segment(folder: Path, tag: str) -> str:
    """A record spooled the way promptrun did before: right in ``spool_dir``."""
    record = build_log_record(*log_args(tag))
    spool = Spool(folder, max_bytes=1 << 20)
    spool.append(encode_record(record))
    spool.release()
    return record.client_request_id


async def test_a_shared_spool_dir_never_ships_records_to_another_server_or_key(
    server: RunningServer, probe: Probe, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    async with AsyncPromptLayer(
        api_key="pl_other", base_url=DOWN, spool_dir=shared, shutdown_timeout=0.1
    ) as other:
        await other.log_request(*log_args("for-the-other-server"))  # type: ignore[arg-type]
    assert other.stats()["pending"] == 1
    async with AsyncPromptLayer(
        api_key=server.api_key, base_url=server.base_url, spool_dir=shared
    ) as pl:
        mine = await pl.log_request(*log_args("mine"))  # type: ignore[arg-type]
        assert await pl.flush(timeout=30)
        stats = pl.stats()
    assert (stats["shipped"], stats["replayed"]) == (1, 0)
    assert [r["tags"] for r in await probe.requests()] == [["mine"]]
    assert await probe.request(str(mine["request_id"])) is not None
    # The other server's record still waits in its own folder, for its own next client.
    assert len(spooled(spool_folder(DOWN, "pl_other", shared))) == 1


async def test_records_an_earlier_version_left_in_spool_dir_wait_until_moved_to_their_folder(
    server: RunningServer, probe: Probe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    left = write_flat_segment(shared, "left-flat")
    mine = spool_folder(server.base_url, server.api_key, shared)
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        async with AsyncPromptLayer(
            api_key=server.api_key, base_url=server.base_url, spool_dir=shared
        ) as pl:
            assert await pl.flush(timeout=30)
            assert pl.stats()["replayed"] == 0
    assert await probe.requests() == []
    [warning] = [r.getMessage() for r in caplog.records if "earlier promptrun" in r.getMessage()]
    assert f"{shared} holds 1 log record(s) in 1 segment file(s)" in warning
    assert f"this client's: {mine}" in warning
    for seg in list(shared.glob("*.seg")):  # what the warning says to do
        shutil.move(seg, mine / seg.name)
    async with AsyncPromptLayer(
        api_key=server.api_key, base_url=server.base_url, spool_dir=shared
    ) as pl:
        assert await pl.flush(timeout=30)
        assert pl.stats()["replayed"] == 1
    assert await probe.request(left) is not None


async def test_records_spooled_under_another_spelling_of_the_url_ship_to_the_same_server(
    server: RunningServer, probe: Probe, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shouting = server.base_url.replace("http://", "HTTP://") + "/"
    left = write_flat_segment(spool_folder(shouting, server.api_key, shared), "shouted")
    async with AsyncPromptLayer(
        api_key=server.api_key, base_url=server.base_url, spool_dir=shared
    ) as pl:
        assert await pl.flush(timeout=30)
        assert pl.stats()["replayed"] == 1
    assert await probe.request(left) is not None


def test_the_spool_folder_ignores_case_default_ports_and_slashes_but_not_host_names(
    tmp_path: Path,
) -> None:
    def folder(url: str) -> Path:
        return spool_folder(url, "pl_k", tmp_path)

    assert folder("HTTP://Host/") == folder("http://host") == folder("http://host:80")
    assert folder("https://API.example.com:443/v1/") == folder("https://api.example.com/v1")
    assert folder("http://host:8080") != folder("http://host")
    assert folder("https://host") != folder("http://host")
    assert folder("http://localhost:8765") != folder("http://127.0.0.1:8765")
    assert folder("http://host/A") != folder("http://host/a")  # paths keep their case
