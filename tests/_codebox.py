"""Whether this machine can make code nodes' sandbox; in CI it must (``make deps``)."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from promptrun.workflows._code_sandbox import CodeSandbox, SandboxStatus


@functools.cache
def _status() -> SandboxStatus:
    # Its own thread and loop, so it works from inside a running test too.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, CodeSandbox().status).result()


def require_sandbox() -> None:
    """Skip (fail, in CI) a test that needs bubblewrap's sandbox where it cannot be made."""
    status = _status()
    if status.sandboxed:
        return
    if os.environ.get("CI"):
        pytest.fail(f"code-node sandbox unavailable in CI: {status.detail}", pytrace=False)
    pytest.skip(f"code-node sandbox unavailable: {status.detail} (make deps installs bwrap)")
