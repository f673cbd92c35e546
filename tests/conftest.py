"""Fixtures for every test: the anyio backend, and promptrun servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promptrun.testing import RunningServer, running_server

# A throwaway PostgreSQL cluster (session) and a fresh database per test that asks for one.
from .pg.fixtures import postgres_cluster, postgres_url  # noqa: F401


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[RunningServer]:
    """A fresh server for one test: temporary database, sandbox providers, fault injection."""
    with running_server(sandbox=True, fault_injection=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def session_server() -> Iterator[RunningServer]:
    """One server for the whole session (sandbox on, no fault injection): share, don't mutate."""
    with running_server(sandbox=True) as srv:
        yield srv
