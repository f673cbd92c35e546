"""The spec's error handling section: exceptions by default, throw_on_error, and its three
examples verbatim."""

from __future__ import annotations

import pytest

from promptrun import PromptLayer, PromptLayerNotFoundError

from .conftest import SpecServer, example, script

# -- "By default, PromptLayer throws exceptions when errors occur."


def test_by_default_errors_are_raised_as_exceptions(spec_env: SpecServer) -> None:
    with PromptLayer() as pl:
        assert pl.throw_on_error is True
        with pytest.raises(PromptLayerNotFoundError, match="NonExistentTemplate"):
            pl.templates.get("NonExistentTemplate")


CONSTRUCTORS_EXAMPLE = """
from promptrun import PromptLayer

# Default behavior: throws exceptions on errors
promptlayer_client = PromptLayer(api_key="pl_****", throw_on_error=True)

# Alternative: logs warnings instead of throwing exceptions
promptlayer_client = PromptLayer(api_key="pl_****", throw_on_error=False)
"""


def test_throw_on_error_controls_whether_errors_raise_or_log_warnings(
    spec_env: SpecServer,
) -> None:
    ns = example(CONSTRUCTORS_EXAMPLE)
    assert ns["promptlayer_client"].throw_on_error is False
    assert ns["promptlayer_client"].api_key == "pl_****"


EXCEPTION_EXAMPLE = """
from promptrun import PromptLayer, PromptLayerNotFoundError, PromptLayerValidationError

promptlayer_client = PromptLayer()

try:
    # Attempt to get a template that might not exist
    template = promptlayer_client.templates.get("NonExistentTemplate")
except PromptLayerNotFoundError as e:
    print(f"Template not found: {e}")
except PromptLayerValidationError as e:
    print(f"Invalid input: {e}")
"""


def test_exception_handling_example_catches_template_not_found(
    spec_env: SpecServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = example(EXCEPTION_EXAMPLE)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("Template not found: ")
    assert line.count("NonExistentTemplate") == 2  # the context names it, the server says it
    assert "template" not in ns


def test_exception_handling_example_catches_invalid_input(
    spec_env: SpecServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same example, with an input that is not valid (an empty name).
    example(EXCEPTION_EXAMPLE.replace('get("NonExistentTemplate")', 'get("")'))
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("Invalid input: ")
    assert "prompt_name" in line


WARNING_EXAMPLE = """
from promptrun import PromptLayer

# Initialize with throw_on_error=False to get warnings instead of exceptions
promptlayer_client = PromptLayer(throw_on_error=False)

# This will log a warning instead of throwing an exception if the template doesn't exist
template = promptlayer_client.templates.get("NonExistentTemplate")
# Returns None if not found, with a warning logged
print(template)  # glue: what it returned
"""


def test_with_throw_on_error_false_a_missing_template_logs_a_warning_and_returns_none(
    spec_env: SpecServer,
) -> None:
    # A plain script: no logging configured, and the warning is still seen.
    done = script(WARNING_EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None\n"
    [warning] = [line for line in done.stderr.splitlines() if line]
    assert warning.startswith(
        "WARNING: fetching prompt template 'NonExistentTemplate': prompt template "
        "'NonExistentTemplate' not found"
    )
    assert warning.endswith("(HTTP 404)")
