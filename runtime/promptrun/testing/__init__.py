"""Test helpers: a running promptrun server with sandbox providers, in-process or as a process.

``running_server()`` is the quick one (a background thread, a temporary database);
``ServerProcess`` runs ``python -m promptrun serve`` for tests of signals, crashes and
restarts. Neither needs an account, a provider key or the internet.
"""

from promptrun.testing._inprocess import RunningServer as RunningServer
from promptrun.testing._inprocess import running_server as running_server
from promptrun.testing._inprocess import sandbox_path as sandbox_path
from promptrun.testing._process import ServerProcess as ServerProcess

__all__ = ["RunningServer", "ServerProcess", "running_server", "sandbox_path"]
