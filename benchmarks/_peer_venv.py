"""The peer SDK's own virtualenv (``.bench/peer-venv``), built once and reused.

The peer gets the same provider SDK versions as the project's venv, so the provider SDK's cost
is the same on both sides and only the wrapper around it differs.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["PEER_REQUIREMENT", "ensure_peer_venv", "peer_requirements"]

PEER_REQUIREMENT = "promptlayer==1.5.16"
# Pinned to the project's versions: these are what a run costs below either wrapper.
_SAME_AS_PROJECT = ("openai", "anthropic", "google-genai", "httpx")


def peer_requirements() -> list[str]:
    """The peer SDK plus the project's exact provider SDK versions."""
    pins = [PEER_REQUIREMENT]
    for dist in _SAME_AS_PROJECT:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_peer_venv(venv: Path, *, quiet: bool = True) -> Path:
    """Create (or reuse) ``venv`` with the peer installed; returns its python."""
    pins = peer_requirements()
    stamp = venv / ".bench-installed"
    wanted = "\n".join(pins) + "\n"
    if stamp.is_file() and stamp.read_text() == wanted and _python(venv).exists():
        return _python(venv)
    print(f"bench: building the peer SDK's virtualenv in {venv} ({', '.join(pins)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("-q")
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *pins], check=True)
    stamp.write_text(wanted)
    return _python(venv)


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    print(ensure_peer_venv(root / ".bench" / "peer-venv", quiet=False))
