"""The request log's composed SQL carries no values: every operation the dashboard and the API
run on the log, on both stores, with hostile text in every filter, cursor, price-table model,
tag and metadata value, and every statement the driver receives is checked for it.

The static check (test_sql.py) cannot follow SQL handed between functions; this runs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from promptrun.server.auth import hash_key
from promptrun.server.store import postgres_store, sqlite_store
from promptrun.server.store.base import (
    Cursor,
    NotFoundError,
    PageRequest,
    RequestQuery,
    RequestRow,
    Store,
    TrackCall,
)
from promptrun.server.store.drivers.sqlite import SQLiteDriver
from promptrun.server.store.queries._sql import Op, Query

pytestmark = pytest.mark.anyio
# Each marker is text that would break out of a quoted literal, or start a comment or a
# second statement, were it pasted into SQL; none may ever appear in a statement.
MARKERS = ("zq'mark", 'zq"mark', "zq;mark", "zq--mark", "zq/*mark", "zq%mark_")
T0 = 1_700_000_000.0


def _recorded(op: Op[Any], seen: list[str]) -> Op[Any]:
    """``op``, with the SQL of every query it yields kept in ``seen``."""
    answer: Any = None
    while True:
        try:
            instruction = op.send(answer)
        except StopIteration as done:
            return done.value
        if isinstance(instruction, Query):
            seen.append(instruction.sql)
        answer = yield instruction


class Recording:
    """A store's driver, recording the SQL of every operation it runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sql: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, make: Callable[[Any], Op[Any]]) -> Any:
        return await self.inner.read(lambda d: _recorded(make(d), self.sql))

    async def write(self, make: Callable[[Any], Op[Any]]) -> Any:
        return await self.inner.write(lambda d: _recorded(make(d), self.sql))


@pytest.fixture(params=["sqlite", "postgres"])
async def recorded(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Recording, int]]:
    if request.param == "postgres":
        store = postgres_store(request.getfixturevalue("postgres_url"), max_connections=4)
    else:
        store = sqlite_store(tmp_path / "s.db", catch_up_after=None)
    await store.start()
    await store.add_keys([("default", hash_key("k"))])
    workspace = await store.workspace_for_key(hash_key("k"))
    assert workspace is not None
    recording = Recording(store.driver)  # type: ignore[attr-defined]
    store.driver = recording  # type: ignore[attr-defined]
    yield store, recording, workspace
    store.driver = recording.inner  # type: ignore[attr-defined]
    await store.close()


def hostile_rows() -> list[RequestRow]:
    rows = []
    for n, marker in enumerate(MARKERS):
        rows.append(
            RequestRow(
                kind="track",
                client_request_id=marker,
                provider=marker,
                model=marker,
                function_name="f",
                start_time=T0 + n * 3000,
                end_time=T0 + n * 3000 + 1,
                body="{}",
                blueprint=msgspec.json.encode(
                    {"prompt_template": {"messages": [{"content": f"say {marker} now"}]}}
                ).decode(),
                prompt_name=marker,
                tags=msgspec.json.encode([marker]).decode(),
                metadata=msgspec.json.encode({marker: marker}).decode(),
                status=marker,
                score=n,
            )
        )
    return rows


async def test_no_statement_of_the_request_log_holds_a_value(
    recorded: tuple[Store, Recording, int],
) -> None:
    store, recording, ws = recorded
    await store.ingest(ws, hostile_rows())
    for marker in MARKERS[:2]:
        await store.track(
            ws, TrackCall(endpoint="metadata", request_ref=marker, values={marker: marker})
        )
        await store.track(ws, TrackCall(endpoint="score", request_ref=marker, values={"score": 5}))
    costs = {marker: (1.0, 2.0) for marker in MARKERS}
    for _phase in ("before catching up", "after"):
        for marker in MARKERS:
            queries = [
                RequestQuery(text=marker),
                RequestQuery(text=marker[:2]),
                RequestQuery(tag=marker, since=T0 + 10.5, until=T0 + 90_000.5),
                RequestQuery(prompt_name=marker, prompt_version=1, tag=marker),
                RequestQuery(provider=marker, model=marker, status=marker),
                RequestQuery(meta_key=marker, meta_value=marker),
                RequestQuery(meta_key=marker, text=marker, tag=marker),
            ]
            for query in queries:
                await store.request_stats(ws, query)
                for sort in ("time", "latency", "tokens", "cost"):
                    for cursor in (None, Cursor(marker, 7), Cursor(1.5, 7)):
                        for before in (False, True):
                            page = PageRequest(
                                sort=sort,  # type: ignore[arg-type]
                                after=None if before else cursor,
                                before=cursor if before else None,
                                limit=3,
                            )
                            try:
                                await store.request_page(
                                    ws, query, page, costs=costs, with_blueprints=True
                                )
                            except NotFoundError:
                                # On PostgreSQL, whose sort keys are numbers: a text key,
                                # or a fraction where token counts are whole.
                                assert cursor is not None
                                assert isinstance(cursor.key, str) or sort == "tokens"
            await store.prompt_metrics(ws, since=T0, until=T0 + 1e6, prompt_name=marker)
            await store.list_requests(ws, limit=5, offset=0, prompt_name=marker)
        await store.request_series(ws, since=T0, until=T0 + 86400, bucket=3600)
        await store.request_series(ws, since=T0 + 7, until=T0 + 3607, bucket=120)
        await store.usage_by_model(ws, since=T0 + 5.5, until=T0 + 9e4)
        await store.prompt_metrics(ws, since=T0, until=None)
        await store.request_facets(ws)
        if isinstance(recording.inner, SQLiteDriver):
            await recording.inner.catch_up()
    assert len(recording.sql) > 1000
    leaked = sorted({sql for sql in recording.sql for m in MARKERS if m in sql})
    assert leaked == []
