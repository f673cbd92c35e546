"""What ``promptrun serve`` tells a user at every start: where the dashboard is, which key to
use, and the ``export`` lines that point a shell (the client, the CLI and the provider SDKs)
at this server and its sandbox providers.

The export lines are plain shell: paste them into another terminal (comments included) and
``promptrun quickstart``, ``promptrun run`` and the examples work offline.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from promptrun.pipeline import SANDBOX_KEY, TABLE

__all__ = ["SANDBOXED", "Banner", "client_url", "sandbox_env"]

#: Providers whose SDKs reach the sandbox with an API-key variable and a base-URL variable
#: alone (Azure also needs an API version; Bedrock and Vertex need signed credentials: see
#: the README's provider table).
SANDBOXED = ("openai", "anthropic", "google", "mistral", "openrouter")


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def sandbox_env(base_url: str) -> dict[str, str]:
    """The base-URL and key variables that send each of :data:`SANDBOXED` to the sandbox."""
    env: dict[str, str] = {}
    for name in SANDBOXED:
        info = TABLE[name]
        env[info.base_var] = base_url + info.sandbox_path
        env[info.key_var] = SANDBOX_KEY
    return env


@dataclass(frozen=True, slots=True)
class Banner:
    """The start-up lines after ``listening on ...``."""

    base_url: str
    #: The key made at this start (shown once), if one was.
    generated_key: str | None
    #: Whether keys were given (``--api-key``, ``PROMPTLAYER_API_KEY``).
    configured_keys: bool
    sandbox: bool
    #: Where the given keys came from (``--api-key`` or ``PROMPTLAYER_API_KEY``).
    key_source: str = "--api-key"

    def notes(self) -> list[str]:
        """Lines for the ``promptrun serve: ...`` log."""
        lines = [f"dashboard: {self.base_url}/dashboard (sign in with an API key)"]
        if self.generated_key is None:
            lines.append(f"API key: {self._which_key()}")
        return lines

    def _which_key(self) -> str:
        if self.configured_keys:
            return f"the one given with {self.key_source}"
        return (
            "use the key printed when this database was first served (it is stored hashed, so "
            "it cannot be shown again), or restart with --api-key KEY to add a key of your "
            "choosing"
        )

    def exports(self) -> list[str]:
        """Shell lines to paste into another terminal."""
        lines = ["# Use this server (and its sandbox providers) from another terminal:"]
        if self.generated_key is not None:
            lines.append(
                f"export PROMPTLAYER_BASE_URL={shlex.quote(self.base_url)} "
                f"PROMPTLAYER_API_KEY={shlex.quote(self.generated_key)}"
            )
        else:
            lines.append(f"export PROMPTLAYER_BASE_URL={shlex.quote(self.base_url)}")
            lines.append("# export PROMPTLAYER_API_KEY=...  (the API key: see above)")
        if self.sandbox:
            env = sandbox_env(self.base_url)
            for name in SANDBOXED:
                info = TABLE[name]
                lines.append(
                    f"export {info.base_var}={shlex.quote(env[info.base_var])} "
                    f"{info.key_var}={shlex.quote(env[info.key_var])}"
                )
        return lines
