"""Where ``promptrun serve`` keeps its database by default: a per-user data folder.

platformdirs' convention for a user's data, written out (it is four lines, not a dependency):
``$XDG_DATA_HOME/promptrun`` (else ``~/.local/share/promptrun``) on Linux and other Unixes,
``~/Library/Application Support/promptrun`` on macOS, ``%LOCALAPPDATA%\\promptrun`` on
Windows. So a server started from any folder finds the same registry, request log and keys;
``--db`` still puts them anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DB_NAME", "data_dir", "default_db"]

DB_NAME = "promptrun.db"


def data_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The folder for promptrun's data on this platform (not created here)."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path(env.get("HOME") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "promptrun"
    if platform == "win32":
        local = env.get("LOCALAPPDATA")
        return (Path(local) if local else home / "AppData" / "Local") / "promptrun"
    xdg = env.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative path is invalid and to be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "promptrun"


def default_db() -> Path:
    """The default SQLite file, its folder made (private to the user) if it was missing."""
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / DB_NAME
