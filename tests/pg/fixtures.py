"""pytest fixtures for PostgreSQL: one throwaway cluster per session, a fresh schema per test.

Each test gets an empty schema of its own in one shared database (the URL sets its
``search_path``), so the store's start-up migrates it as it would a new database; a schema
is much quicker to make and drop than a database. Without PostgreSQL installed the tests that
need it skip, except in CI (``CI`` set), where they fail: CI installs it (``make deps``) and
must run them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from ._cluster import PostgresCluster, PostgresMissing, find_bindir, run_sql

__all__ = ["DATABASE", "postgres_cluster", "postgres_url", "schema_url"]

DATABASE = "promptrun_tests"
_numbers = itertools.count(1)


def schema_url(cluster: PostgresCluster, schema: str) -> str:
    """A URL whose connections use ``schema`` first (extensions live in ``public``)."""
    return f"{cluster.dsn(DATABASE)}&options=-csearch_path%3D{schema},public"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this session's own, with the test database made."""
    try:
        find_bindir()
    except PostgresMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI must run the PostgreSQL tests)")
        pytest.skip(str(exc))
    with PostgresCluster() as cluster:
        run_sql(cluster.dsn(), f"CREATE DATABASE {DATABASE}")
        # Once for the database, where every test schema finds it.
        run_sql(cluster.dsn(DATABASE), "CREATE EXTENSION pg_trgm SCHEMA public")
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a new, empty schema (the store migrates it on start), dropped afterwards."""
    schema = f"test_{os.getpid()}_{next(_numbers)}"
    run_sql(postgres_cluster.dsn(DATABASE), f"CREATE SCHEMA {schema}")
    yield schema_url(postgres_cluster, schema)
    run_sql(postgres_cluster.dsn(DATABASE), f"DROP SCHEMA {schema} CASCADE")
