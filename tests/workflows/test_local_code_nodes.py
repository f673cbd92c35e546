"""Local execution's code nodes: the same sandbox as the server's, or refused unless allowed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from promptrun import AsyncPromptLayer, PromptLayer, PromptLayerError, PromptLayerValidationError
from tests._codebox import require_sandbox

pytestmark = pytest.mark.anyio

WHERE_AM_I = {
    "nodes": [{"name": "c", "type": "code", "is_output_node": True,
               "configuration": {"code": "import os\nreturn [os.getpid(), dict(os.environ)]"}}]
}  # fmt: skip
NO_CODE = {"nodes": [{"name": "v", "type": "value", "configuration": {"value": 1},
                      "is_output_node": True}]}  # fmt: skip


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    async with AsyncPromptLayer(
        api_key="pl_local", base_url="http://127.0.0.1:9", spool_dir=tmp_path / "spool"
    ) as pl:
        yield pl


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    missing = tmp_path / "no-bwrap"
    monkeypatch.setenv("PROMPTRUN_BWRAP", str(missing))
    return missing


async def test_local_code_nodes_run_in_the_sandbox_away_from_the_clients_keys(
    client: AsyncPromptLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_sandbox()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-clients-own")
    pid, environ = await client.run_workflow(None, execution="local", definition=WHERE_AM_I)
    assert pid == 2  # the first process after the sandbox's init, in a PID namespace of its own
    assert "OPENAI_API_KEY" not in environ


async def test_where_no_sandbox_can_be_made_local_code_nodes_are_refused_before_running(
    client: AsyncPromptLayer, no_bwrap: Path
) -> None:
    with pytest.raises(PromptLayerError) as caught:
        await client.run_workflow("flow", execution="local", definition=WHERE_AM_I)
    message = caught.value.message
    assert message.startswith(
        "run_workflow(): workflow 'flow' has code nodes, and code nodes cannot run here: this "
        f"machine cannot create their sandbox ('{no_bwrap}' is not an executable file)"
    )
    assert "install bubblewrap" in message
    assert message.endswith(
        "or pass allow_unsandboxed_code=True to run_workflow() to run them without the kernel "
        "boundary (only for code you trust)"
    )
    assert await client.run_workflow(None, execution="local", definition=NO_CODE) == 1


async def test_allow_unsandboxed_code_runs_them_anyway_and_says_so(
    client: AsyncPromptLayer, no_bwrap: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="promptlayer"):
        pid, environ = await client.run_workflow(
            None, execution="local", definition=WHERE_AM_I, allow_unsandboxed_code=True
        )
    assert pid != 2  # a plain child process: no PID namespace of its own
    assert set(environ) <= {"LC_CTYPE"}  # still an empty environment
    assert "runs its code nodes WITHOUT a sandbox (allow_unsandboxed_code=True)" in caplog.text


def test_the_sync_client_takes_allow_unsandboxed_code_too(no_bwrap: Path, tmp_path: Path) -> None:
    with PromptLayer(
        api_key="pl_local", base_url="http://127.0.0.1:9", spool_dir=tmp_path / "spool"
    ) as pl:
        with pytest.raises(PromptLayerError, match="has code nodes, and code nodes cannot run"):
            pl.run_workflow(None, execution="local", definition=WHERE_AM_I)
        value = pl.run_workflow(
            None, execution="local", definition=WHERE_AM_I, allow_unsandboxed_code=True
        )
    assert isinstance(value[0], int)


async def test_allow_unsandboxed_code_must_be_a_bool(client: AsyncPromptLayer) -> None:
    with pytest.raises(PromptLayerValidationError, match="allow_unsandboxed_code must be True"):
        await client.run_workflow(
            None,
            execution="local",
            definition=NO_CODE,
            allow_unsandboxed_code="yes",  # type: ignore[arg-type]
        )
