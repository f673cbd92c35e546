"""``import promptrun`` loads the clients and nothing that only running them needs.

A module-set assertion in a fresh interpreter, not a timing (timings are benchmarks/'s): what
a run needs (the pipeline, the runtime, the log shipper, msgspec's records, aiohttp, the
provider SDKs, templates' jinja2, tracing's OpenTelemetry, the server) loads when a client
first uses it. The public names stay real objects, not lazy stand-ins.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# What `import promptrun` must not load: each is imported where it is first needed.
LAZY = (
    "aiohttp",
    "anthropic",
    "boto3",
    "botocore",
    "google.genai",
    "httpx",
    "jinja2",
    "mistralai",
    "msgspec",
    "openai",
    "opentelemetry",
    "promptrun._lifetime",
    "promptrun._logreq",
    "promptrun._runtime",
    "promptrun.actors.shipper",
    "promptrun.blueprint",
    "promptrun.pipeline",
    "promptrun.server",
    "promptrun.tracing._setup",
    "promptrun.wire.ingest",
    "promptrun.wire.tracking",
    "promptrun.workflows",
)


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_import_promptrun_loads_none_of_what_only_a_run_needs() -> None:
    modules = _modules_after("import promptrun")
    assert "promptrun._client" in modules  # the clients themselves are loaded
    assert [name for name in LAZY if _loaded(modules, name)] == []


def test_every_public_name_imports_as_the_real_object_without_the_run_machinery() -> None:
    modules = _modules_after(
        """
        import promptrun
        from promptrun import *  # noqa: F403
        from promptrun._client import AsyncPromptLayer as Real
        assert promptrun.AsyncPromptLayer is Real
        for name in promptrun.__all__:
            assert getattr(promptrun, name) is not None, name
        """
    )
    assert [name for name in LAZY if _loaded(modules, name)] == []


def test_a_client_that_is_made_but_not_used_still_loads_no_provider_sdk() -> None:
    modules = _modules_after(
        """
        import promptrun
        client = promptrun.AsyncPromptLayer(api_key="pl_x", base_url="http://127.0.0.1:9")
        assert client.stats()["queued"] == 0
        """
    )
    sdks = ("openai", "anthropic", "google.genai", "mistralai", "boto3", "aiohttp", "jinja2")
    assert [name for name in sdks if _loaded(modules, name)] == []
