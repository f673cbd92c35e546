"""What promptrun says on the ``promptlayer`` logger: DEBUG per operation, INFO per lifecycle
event, nothing at INFO per run; and, with logging unconfigured, warnings on stderr."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator

import pytest

from promptrun.testing import RunningServer

from .._clients import Factory, Probe

pytestmark = pytest.mark.anyio

VARS = {"name": "Ada", "topic": "b"}


class Records(logging.Handler):
    """Every record the ``promptlayer`` logger handles, from DEBUG up."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]

    def clear(self) -> None:
        self.records.clear()


@pytest.fixture
def records() -> Iterator[Records]:
    logger = logging.getLogger("promptlayer")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def has(messages: list[str], *parts: str) -> bool:
    return any(all(p in m for p in parts) for m in messages)


async def test_a_run_says_at_debug_what_the_cache_the_provider_and_the_shipper_did(
    make_client: Factory, probe: Probe, records: Records
) -> None:
    await probe.publish("greet")
    async with make_client(cache_ttl_seconds=60) as pl:
        await pl.run("greet", input_variables=VARS)
        await pl.run("greet", input_variables=VARS)
        assert await pl.flush(timeout=10)
    debug = records.at(logging.DEBUG)
    assert has(debug, "'greet'", "not in the cache")
    assert has(debug, "'greet'", "fetched version 1 in", "ms (HTTP 200)")
    assert has(debug, "'greet'", "served from the cache")
    assert has(debug, "openai model gpt-4o-mini: calling the provider")
    assert has(debug, "openai model gpt-4o-mini: answered after", "ms")
    assert has(debug, "shipped 2 log records in", "ms")


async def test_a_stream_says_at_debug_when_it_opened_and_how_it_ended(
    make_client: Factory, probe: Probe, records: Records
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        chunks = [c async for c in await pl.run("greet", input_variables=VARS, stream=True)]
    debug = records.at(logging.DEBUG)
    assert has(debug, "openai model gpt-4o-mini: opening a stream")
    assert has(debug, f"the stream ended after {len(chunks) - 1} chunks after", "ms")


async def test_lifecycle_events_are_info_start_protocol_and_stop_with_counters(
    make_client: Factory, probe: Probe, provider_env: RunningServer, records: Records
) -> None:
    await probe.publish("greet")
    async with make_client() as pl:
        await pl.run("greet", input_variables=VARS)
        assert await pl.flush(timeout=10)
    info = records.at(logging.INFO)
    assert has(info, "promptrun client started for", provider_env.base_url)
    assert has(info, "ships log records to", "in batches")
    assert has(info, "promptrun client stopped", "'shipped': 1")


async def test_runs_log_nothing_at_info_or_above(
    make_client: Factory, probe: Probe, records: Records
) -> None:
    await probe.publish("greet")
    async with make_client(cache_ttl_seconds=60) as pl:
        await pl.run("greet", input_variables=VARS)
        assert await pl.flush(timeout=10)  # the lifecycle events so far: start, protocol
        records.clear()
        for _ in range(20):
            await pl.run("greet", input_variables=VARS)
        async for _chunk in await pl.run("greet", input_variables=VARS, stream=True):
            pass
        assert await pl.flush(timeout=10)
        assert [r for r in records.records if r.levelno >= logging.INFO] == []
    assert len(records.at(logging.DEBUG)) >= 20


async def test_spool_writes_are_debug_and_a_replay_is_info_with_its_count(
    make_client: Factory, probe: Probe, records: Records
) -> None:
    await probe.faults({"path": "/promptrun/v1/ingest", "status": 503, "times": 100})
    async with make_client() as pl:
        for _ in range(3):
            await pl.log_request(
                "openai", "gpt-4o", {"type": "chat", "messages": []},
                {"type": "chat", "messages": []}, 1.0, 2.0,
            )  # fmt: skip
        assert not await pl.flush(timeout=10)
    assert has(records.at(logging.DEBUG), "spooled 3 log records to")
    await probe.clear_faults()
    async with make_client() as pl:  # the next client for this server replays the spool
        assert await pl.flush(timeout=10)
    assert has(records.at(logging.DEBUG), "replaying 3 spooled log records from")
    assert has(records.at(logging.INFO), "promptrun replayed 3 spooled log records")


SCRIPT = """
import stamina
stamina.set_testing(True, attempts=4, cap=True)
{setup}
from promptrun import PromptLayer
pl = PromptLayer(throw_on_error=False)
assert pl.templates.get("NonExistentTemplate") is None
"""


def run_script(server: RunningServer, setup: str, tmp: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PROMPTLAYER_API_KEY": server.api_key,
        "PROMPTLAYER_BASE_URL": server.base_url,
        "PROMPTRUN_SPOOL_DIR": tmp,
    }
    code = SCRIPT.format(setup=textwrap.dedent(setup))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("", "WARNING: fetching prompt template 'NonExistentTemplate': "),
        (
            "import logging; logging.basicConfig(format='%(levelname)s|%(name)s|%(message)s')",
            "WARNING|promptlayer|WARNING: fetching prompt template 'NonExistentTemplate': ",
        ),
    ],
    ids=["no-logging-configured", "basicConfig"],
)
def test_a_warning_reaches_stderr_once_whether_or_not_logging_is_configured(
    server: RunningServer, tmp_path: os.PathLike[str], setup: str, expected: str
) -> None:
    done = run_script(server, setup, str(tmp_path))
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "NonExistentTemplate" in ln]
    assert line.startswith(expected)
    assert line.count("fetching prompt template") == 1
    assert "(HTTP 404)" in line


def test_a_handler_on_the_promptlayer_logger_takes_over_from_stderr(
    server: RunningServer, tmp_path: os.PathLike[str]
) -> None:
    setup = """
    import logging
    seen = []
    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())
    logging.getLogger("promptlayer").addHandler(Keep())
    import atexit
    atexit.register(lambda: print("kept:", len(seen)))
    """
    done = run_script(server, setup, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "NonExistentTemplate" not in done.stderr
    assert "kept: 1" in done.stdout


def test_retries_are_reported_once_on_the_promptlayer_logger_not_again_by_stamina(
    server: RunningServer, tmp_path: os.PathLike[str]
) -> None:
    # Three 500s, then the registry answers (a 404: the template does not exist).
    rule = {"path": "/prompt-templates/NonExistentTemplate", "status": 500, "times": 3}
    request = urllib.request.Request(
        server.base_url + "/promptrun/v1/_faults",
        data=json.dumps({"rules": [rule]}).encode(),
        headers={"X-API-KEY": server.api_key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    setup = "import logging; logging.basicConfig(format='%(name)s|%(message)s')"
    done = run_script(server, setup, str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    retries = [ln for ln in lines if "Retrying in" in ln]
    assert [ln.split("...")[0] for ln in retries] == [
        "promptlayer|Retrying in 2 seconds",
        "promptlayer|Retrying in 4 seconds",
        "promptlayer|Retrying in 8 seconds",
    ]
    assert all(ln.count("fetching prompt template 'NonExistentTemplate'") == 1 for ln in retries)
    assert not [ln for ln in lines if ln.startswith("stamina")]
