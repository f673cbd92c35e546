"""The schema: numbered files per dialect, one runner, and databases made by earlier releases.

``fixtures/`` holds databases made by promptrun before the store was rewritten (commit
818802b), with data of every kind: ``sqlite-main-v3.sql`` (schema version 3, the latest then),
``sqlite-main-v1.sql`` (an older file at version 1) and ``postgres-main-v2.sql`` (pg_dump of
a schema at version 2, with ``__SCHEMA__`` for its name). Each must open with today's store,
migrate to the latest version and read back as it was written.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import unquote

import asyncpg
import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import postgres_store, sqlite_store
from promptrun.server.store.base import PageRequest, RequestQuery, Store, TrackCall
from promptrun.server.store.queries.migrate import migrations

from ._records import row, version

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parent / "fixtures"


def test_each_dialect_has_its_migrations_numbered_from_one() -> None:
    # Each file holds statements (migrations() itself refuses gaps in the numbering).
    assert len(migrations("sqlite")) >= 7 and all(migrations("sqlite"))
    assert len(migrations("postgres")) >= 6 and all(migrations("postgres"))
    assert any("request_payloads" in s for s in migrations("postgres")[0])


async def check_main_data(store: Store, *, workflows: bool) -> None:
    ws = await store.workspace_for_key(hash_key("key-default"))
    other = await store.workspace_for_key(hash_key("key-other"))
    assert ws is not None and other is not None and ws != other
    # Keys from before keep resolving; each workspace's (only) key became its admin.
    assert sorted((k.workspace_name, k.role, k.source) for k in await store.list_keys(None)) == [
        ("default", "admin", "migrated"),
        ("other", "admin", "migrated"),
    ]
    prod = await store.get_version(ws, "greet", label="prod")
    assert (prod.number, prod.commit_message, prod.tags) == (1, "first", ["t"])
    assert (await store.get_version(ws, "greet")).metadata["model"]["name"] == "gpt-4o"
    items, total = await store.list_requests(ws, limit=10, offset=0, prompt_name=None)
    assert total == 3
    first = await store.get_request(ws, "r1")
    assert (first["prompt_name"], first["scores"], len(first["groups"])) == (
        "greet",
        {"default": 80},
        1,
    )
    second = await store.get_request(ws, "r2")
    assert second["metadata"] == {"user": "ada", "step": "2"}
    assert second["scores"] == {"accuracy": 55}
    assert second["status"] == "ERROR"
    # The track call's client id came along: sent again, it is not applied twice.
    call = TrackCall(endpoint="score", request_ref="r2", values={"score": 1}, client_call_id="tc1")
    [again] = await store.ingest(ws, [call])
    assert (again.status, again.request_id) == ("duplicate", second["id"])
    assert (await store.get_request(other, "o1"))["provider"] == "anthropic"
    if workflows:
        flow = await store.get_workflow(ws, "flow", label="prod")
        executions, count = await store.list_workflow_executions(
            ws, workflow="flow", status=None, limit=10, offset=0
        )
        assert (flow.number, count) == (1, 2)
        done = await store.get_workflow_execution(ws, executions[1]["id"])
        assert [(n["name"], n["value"]) for n in done["nodes"]] == [("a", "x")]
        assert [p.model for p in await store.model_prices(ws)] == ["gpt-4o-mini"]
    # The rollups, filter menus, metadata filter and text search cover the old requests.
    stats = await store.request_stats(ws, RequestQuery())
    assert (stats.requests, stats.errors, stats.mean_score) == (3, 1, 80.0)
    assert (await store.request_stats(ws, RequestQuery(prompt_name="greet"))).requests == 1
    assert "greet" in (await store.request_facets(ws))["prompts"]
    for query, found in (
        (RequestQuery(meta_key="step", meta_value="2"), ["r2"]),
        (RequestQuery(meta_key="user", meta_value="ada"), [None, "r2", "r1"]),
        (RequestQuery(text="hello ADA", status="SUCCESS"), [None, "r1"]),
    ):
        page = await store.request_page(ws, query, PageRequest(), costs={})
        assert [i["client_request_id"] for i in page.items] == found
    ada = await store.request_stats(ws, RequestQuery(meta_key="user", meta_value="ada"))
    assert (ada.requests, ada.errors, ada.mean_score) == (3, 1, 80.0)
    # And it keeps working: new rows go in after the old ones.
    new_id = await store.insert_request(ws, row("after-upgrade"))
    assert new_id > max(i["id"] for i in items)
    assert (await store.publish(ws, version("greet"))).number == 3
    # Labels made before labels had ids get one, and move by it.
    labels = (await store.template_labels(ws, "greet")).labels
    prod_label = next(x for x in labels if x.label == "prod")
    assert prod_label.created_at > 0
    assert (await store.move_label(ws, prod_label.id, 3)).previous_number == 1


@pytest.mark.parametrize("fixture", ["sqlite-main-v3.sql", "sqlite-main-v1.sql"])
async def test_a_sqlite_file_from_before_opens_and_migrates(tmp_path: Path, fixture: str) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript((FIXTURES / fixture).read_text())
    store = sqlite_store(path)
    await store.start()
    try:
        await check_main_data(store, workflows=fixture.endswith("v3.sql"))
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, len(migrations("sqlite")) + 1))


async def test_a_postgres_schema_from_before_opens_and_migrates(postgres_url: str) -> None:
    schema = re.search(r"search_path=([a-z0-9_]+),", unquote(postgres_url))
    assert schema is not None
    script = (FIXTURES / "postgres-main-v2.sql").read_text().replace("__SCHEMA__", schema[1])
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(script)
    finally:
        await conn.close()
    store = postgres_store(postgres_url)
    await store.start()
    try:
        await check_main_data(store, workflows=True)
    finally:
        await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()
    assert versions == list(range(1, len(migrations("postgres")) + 1))


async def test_a_database_from_a_newer_promptrun_is_refused(make_store: tuple[str, object]) -> None:
    from .conftest import open_store

    store = open_store(make_store)
    await store.start()
    await store.close()
    kind, target = make_store
    if kind == "sqlite":
        with sqlite3.connect(str(target)) as conn:
            conn.execute("INSERT INTO schema_version (version) VALUES (999)")
    else:
        conn = await asyncpg.connect(str(target))
        await conn.execute("INSERT INTO schema_version (version) VALUES (999)")
        await conn.close()
    with pytest.raises(RuntimeError, match="newer than this promptrun"):
        await open_store(make_store).start()
