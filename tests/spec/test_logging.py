"""The spec's logging section, each example run as a script of its own (logging set-up is
per process): INFO shows PromptLayer operations, the logger's level picks what is seen, and
retries are logged as "Retrying in N seconds..."."""

from __future__ import annotations

import re

from .._registry_stub import StubRegistry
from .conftest import SpecServer, script

INFO_EXAMPLE = """
import logging
from promptrun import PromptLayer

# Configure logging to see PromptLayer logs
logging.basicConfig(level=logging.INFO)

promptlayer_client = PromptLayer()

# Now you'll see log output from PromptLayer operations
for _ in range(3):  # glue: some operations
    promptlayer_client.run(prompt_name="your-prompt")
"""


def ours(stderr: str, level: str) -> list[str]:
    prefix = f"{level}:promptlayer:"
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


def test_with_logging_at_info_you_see_log_output_from_promptlayer_operations(
    spec_env: SpecServer,
) -> None:
    done = script(INFO_EXAMPLE)
    assert done.returncode == 0, done.stderr
    info = ours(done.stderr, "INFO")
    assert info[0] == f"promptrun client started for {spec_env.base_url}"
    assert any(line.startswith("promptrun ships log records to ") for line in info)
    assert info[-1].startswith("promptrun client stopped: {'queued': 3, 'shipped': 3")
    assert len(info) == 3  # lifecycle events only: nothing per run
    assert ours(done.stderr, "WARNING") == []


LEVELS_EXAMPLE = """
import logging

# Get the PromptLayer logger
logger = logging.getLogger("promptlayer")

# Set to WARNING to only see warnings and errors
logger.setLevel(logging.WARNING)
"""
DEBUG_LINES = """
# Set to DEBUG to see detailed information
logger.setLevel(logging.DEBUG)
"""
OPERATIONS = """
from promptrun import PromptLayer  # glue: a handler for the records, and some operations
logging.basicConfig()
with PromptLayer(throw_on_error=False, cache_ttl_seconds=60) as pl:
    pl.run(prompt_name="your-prompt")
    pl.run(prompt_name="your-prompt")
    pl.templates.get("NonExistentTemplate")
"""


def test_the_logger_set_to_warning_shows_only_warnings_and_errors(spec_env: SpecServer) -> None:
    done = script(LEVELS_EXAMPLE + OPERATIONS)
    assert done.returncode == 0, done.stderr
    assert ours(done.stderr, "DEBUG") == []
    assert ours(done.stderr, "INFO") == []
    [warning] = ours(done.stderr, "WARNING")
    assert warning.startswith("WARNING: fetching prompt template 'NonExistentTemplate'")


def test_the_logger_set_to_debug_shows_detailed_information(spec_env: SpecServer) -> None:
    done = script(LEVELS_EXAMPLE + DEBUG_LINES + OPERATIONS)
    assert done.returncode == 0, done.stderr
    debug = ours(done.stderr, "DEBUG")
    for expected in (
        r"template 'your-prompt': not in the cache, fetching it",
        r"template 'your-prompt': fetched version 1 in [\d.]+ ms \(HTTP 200\)",
        r"template 'your-prompt': served from the cache \([\d.]+ s old\)",
        r"openai model gpt-4o-mini: calling the provider",
        r"openai model gpt-4o-mini: answered after [\d.]+ ms",
        r"shipped \d log records in [\d.]+ ms",
    ):
        assert any(re.fullmatch(expected, line) for line in debug), (expected, debug)
    assert len(ours(done.stderr, "INFO")) == 3
    assert len(ours(done.stderr, "WARNING")) == 1


RETRY_EXAMPLE = """
import stamina  # glue: the spec's waits (2 + 4 s), instantly
stamina.set_testing(True, attempts=4, cap=True)

import logging
from promptrun import PromptLayer

# Set up logging to see retry attempts
logging.basicConfig(
    level=logging.WARNING,
    format='%(asctime)s - %(name)s - %(levelname)s - %(message)s'
)

promptlayer_client = PromptLayer()

# If a retry occurs, you'll see log messages like:
# "Retrying in 2 seconds..."
# "Retrying in 4 seconds..."
promptlayer_client.templates.get("TestPrompt")  # glue: a call that is retried twice
"""


def test_retry_logs_read_retrying_in_2_seconds_then_retrying_in_4_seconds(
    stub: StubRegistry,
) -> None:
    stub.queue("/prompt-templates/TestPrompt", 500, 503)
    done = script(RETRY_EXAMPLE)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert len(lines) == 2, lines
    assert re.match(rf"{stamp} - promptlayer - WARNING - Retrying in 2 seconds\.\.\. \(", lines[0])
    assert re.match(rf"{stamp} - promptlayer - WARNING - Retrying in 4 seconds\.\.\. \(", lines[1])
    assert lines[0].endswith("(fetching prompt template 'TestPrompt': stub failure 500 (HTTP 500))")
    assert stub.hits["/prompt-templates/TestPrompt"] == 3
