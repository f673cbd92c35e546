"""The server every benchmark talks to: one ``promptrun serve`` with the reference latencies.

Sandbox providers answer after ``provider_latency_ms``; fault injection adds ``api_latency_ms``
to every PromptLayer endpoint a client calls (template fetch, /track-request, /log-request, and
promptrun's batch ingest), which stands in for a hosted PromptLayer API that far away.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from promptrun.testing import ServerProcess

__all__ = ["API_PATHS", "BenchServer"]

API_PATHS = ("/prompt-templates", "/track-request", "/log-request", "/promptrun/v1/ingest")
_TEMPLATE = (
    Path(__file__).resolve().parent.parent / "runtime/promptrun/examples/templates/greet.json"
)
INPUT_VARIABLES = {"name": "Ada", "topic": "the analytical engine"}
_TICKS = os.sysconf("SC_CLK_TCK")


class BenchServer:
    """Start, configure and query the benchmarks' server."""

    def __init__(
        self, workdir: Path, *, provider_latency_ms: float, api_latency_ms: float, chunks: int
    ) -> None:
        self.provider_latency_ms = provider_latency_ms
        self.api_latency_ms = api_latency_ms
        self.chunks = chunks
        self.proc = ServerProcess(
            workdir / "bench.db",
            args=[
                "--fault-injection",
                "--sandbox-latency-ms", str(provider_latency_ms),
                "--sandbox-chunks", str(chunks),
            ],
        )  # fmt: skip
        self.prompt_name = "greet"
        self.llm_kwargs: dict[str, Any] = {}

    @property
    def base_url(self) -> str:
        return self.proc.base_url

    @property
    def api_key(self) -> str:
        return self.proc.api_key

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"X-API-KEY": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def start(self) -> BenchServer:
        self.proc.start()
        template = json.loads(_TEMPLATE.read_text())
        self.prompt_name = template["prompt_name"]
        self._call(
            "POST",
            "/rest/prompt-templates",
            {
                "prompt_template": {"prompt_name": self.prompt_name, "tags": ["bench"]},
                "prompt_version": {
                    "prompt_template": template["prompt_template"],
                    "metadata": template["metadata"],
                },
                "release_labels": template.get("release_labels", []),
            },
        )
        fetched = self._call(
            "POST",
            f"/prompt-templates/{self.prompt_name}",
            {"input_variables": INPUT_VARIABLES},
        )
        self.llm_kwargs = fetched["llm_kwargs"]
        self._call(
            "POST",
            "/sandbox/_control",
            {"latency_ms": self.provider_latency_ms, "chunks": self.chunks, "chunk_delay_ms": 0},
        )
        rule = {"status": None, "times": None, "delay_ms": self.api_latency_ms}
        self._call(
            "POST", "/promptrun/v1/_faults", {"rules": [{"path": p, **rule} for p in API_PATHS]}
        )
        return self

    def worker_config(self) -> dict[str, Any]:
        return {
            "prompt_name": self.prompt_name,
            "input_variables": INPUT_VARIABLES,
            "llm_kwargs": self.llm_kwargs,
        }

    def worker_env(self, spool_dir: Path) -> dict[str, str]:
        """The environment of a worker: this server for PromptLayer and for OpenAI."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PROMPTLAYER_", "PROMPTRUN_", "OPENAI_", "PYTHON"))
        }
        env |= {
            "PROMPTLAYER_API_KEY": self.api_key,
            "PROMPTLAYER_BASE_URL": self.base_url,
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": self.proc.sandbox_url("openai"),
            "PROMPTRUN_SPOOL_DIR": str(spool_dir),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        return env

    def stored(self) -> int:
        """Requests stored on the server so far (every workspace the key sees)."""
        return int(self._call("GET", "/promptrun/v1/requests?limit=1")["total"])

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used."""
        pid = self.proc.process.pid if self.proc.process else None
        if pid is None:
            return 0.0
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def stop(self) -> None:
        try:
            self.proc.stop()
        finally:
            self.proc.close()
