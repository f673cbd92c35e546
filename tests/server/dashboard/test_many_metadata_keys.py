"""A request stored with far more metadata than the server now takes (by an older server, or
written around it) is shown in part: its page, the API and the request list read the first
1,000 keys it was logged with (and 2,000 set by track.metadata), cut long values on the page,
and say that they did, instead of building a page of every key."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from promptrun.server.store.queries.metadata_rows import COLUMNS, copies

from ._dash import KEY, Visitor

pytestmark = pytest.mark.anyio

KEYS = 20_000  # far past the limits, and quick to write
LONG = "x" * 5_000


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "promptrun.db"  # the visitor's server uses this file


async def _legacy_row(visitor: Visitor, db_path: Path) -> int:
    """A logged request rewritten as an older server stored a huge metadata: in its row, its
    body, and one filter row per key (with a long value among them)."""
    request_id = await visitor.log(metadata={"user": "ada"})
    metadata = {"long": LONG, **{f"k{i:05}": f"v{i}" for i in range(KEYS)}}
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        (body,) = conn.execute("SELECT body FROM requests WHERE id = ?", (request_id,)).fetchone()
        conn.execute(
            "UPDATE requests SET metadata = ?, body = ? WHERE id = ?",
            (json.dumps(metadata), json.dumps({**json.loads(body), "metadata": metadata}),
             request_id),
        )  # fmt: skip
        conn.executemany(
            f"INSERT OR REPLACE INTO request_metadata ({COLUMNS}) "
            f"SELECT r.id, ?, ?, {copies('r')} FROM requests r WHERE r.id = ?",
            [(key, value, request_id) for key, value in metadata.items()],
        )
    return request_id


async def _api(visitor: Visitor, path: str) -> Any:
    async with visitor.client.get(path, headers={"X-API-KEY": KEY}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_the_request_page_shows_part_of_a_huge_metadata_and_says_so(
    signed_in: Visitor, db_path: Path
) -> None:
    request_id = await _legacy_row(signed_in, db_path)
    status, page = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert status == 200
    shown = re.findall(r'<dt class="meta-key">', page)
    assert 1_000 <= len(shown) <= 3_000
    assert "Not all of this request's metadata is shown" in page
    assert LONG not in page  # a long value is cut on the page
    assert "x" * 1_000 + "…" in page
    assert "5,000 characters" in page
    assert len(page) < 1_000_000  # every key, as before, made a page of several MB


async def test_the_api_returns_part_of_a_huge_metadata_and_flags_it(
    signed_in: Visitor, db_path: Path
) -> None:
    request_id = await _legacy_row(signed_in, db_path)
    item = await _api(signed_in, f"/promptrun/v1/requests/{request_id}")
    assert item["metadata_truncated"] is True
    assert 1_000 <= len(item["metadata"]) <= 3_000
    assert item["metadata"]["long"] == LONG  # values as stored: the API cuts keys, not text
    assert len(item["body"]["metadata"]) == 1_000
    assert item["body"]["model"] == "gpt-4o-mini"  # the rest of the body as stored
    [listed] = [i for i in (await _api(signed_in, "/promptrun/v1/requests"))["items"]
                if i["id"] == request_id]  # fmt: skip
    assert listed["metadata_truncated"] is True
    assert len(listed["metadata"]) == 1_000


async def test_the_request_list_and_its_export_still_render(
    signed_in: Visitor, db_path: Path
) -> None:
    await _legacy_row(signed_in, db_path)
    for path in ("/dashboard/requests", "/dashboard/requests/export.jsonl"):
        status, page = await signed_in.get(path)
        assert status == 200
        assert len(page) < 1_000_000


async def test_metadata_within_the_limits_is_shown_whole(signed_in: Visitor) -> None:
    metadata = {f"k{i}": "v" * 1_000 for i in range(1_000)}
    request_id = await signed_in.log(metadata=metadata)
    await signed_in.api("/library-track-metadata", {"request_id": request_id, "metadata": {
        f"t{i}": "v" for i in range(1_000)}})  # fmt: skip
    item = await _api(signed_in, f"/promptrun/v1/requests/{request_id}")
    assert "metadata_truncated" not in item
    assert len(item["metadata"]) == 2_000
    status, page = await signed_in.get(f"/dashboard/requests/{request_id}")
    assert status == 200
    assert len(re.findall(r'<dt class="meta-key">', page)) == 2_000
    assert "Not all of this request's metadata is shown" not in page
    assert "v" * 1_000 in page
