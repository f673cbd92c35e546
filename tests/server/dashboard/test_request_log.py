"""The request log as users expect it, on both stores: previews, sortable columns, totals and
latency percentiles, metrics per prompt and version, the metadata filter, search by id, the
streamed CSV and JSONL export, and the API's priced cost."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from promptrun.server.app import ServerConfig, create_app
from promptrun.server.store.queries.log_filter import TEXT_CAP

from ._dash import KEY, OTHER_KEY, Visitor, chat

pytestmark = pytest.mark.anyio
_ROW_IDS = re.compile(r'<tr data-href="/dashboard/requests/(\d+)">')


@pytest.fixture(params=["sqlite", "postgres"])
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Visitor]:
    """A signed-in visitor of a server on SQLite, then on PostgreSQL."""
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    config = ServerConfig(
        db_path=tmp_path / "promptrun.db",
        database_url=database_url,
        api_keys=(KEY, f"other:{OTHER_KEY}"),
        generate_key=False,
        sandbox=False,
    )
    async with (
        TestServer(create_app(config), host="127.0.0.1", port=0) as server,
        TestClient(server) as client,
    ):
        visitor = Visitor(client)
        status, _ = await visitor.sign_in()
        assert status == 200
        yield visitor


async def ingest(visitor: Visitor, records: list[dict[str, Any]]) -> list[int]:
    """Log requests through the batch endpoint (each a /log-request body with a client id)."""
    now = time.time()
    batch = []
    for n, fields in enumerate(records):
        body = {
            "provider": "openai",
            "model": "gpt-4o",
            "input": chat(f"question {n}"),
            "output": chat(f"answer {n}", role="assistant"),
            "request_start_time": now - 100 + n,
            "request_end_time": now - 100 + n + 1,
            "input_tokens": 100,
            "output_tokens": 10,
        }
        client_id = fields.pop("client_request_id", f"req_{n}_{now}")
        body.update(fields)
        batch.append({"type": "log", "client_request_id": client_id, "body": body})
    answer = await visitor.api("/promptrun/v1/ingest", {"records": batch})
    assert all(r["status"] == "stored" for r in answer["results"]), answer
    return [r["request_id"] for r in answer["results"]]


def listed(page: str) -> list[int]:
    return [int(x) for x in _ROW_IDS.findall(page)]


async def test_the_list_shows_what_was_sent_and_answered_and_the_score(both: Visitor) -> None:
    (request_id,) = await ingest(
        both,
        [
            {
                "input": chat("Which river runs through Paris?"),
                "output": chat("The Seine, mostly.", role="assistant"),
                "score": 87,
            }
        ],
    )
    status, page = await both.get("/dashboard/requests")
    assert status == 200
    row = page[page.index(f'<tr data-href="/dashboard/requests/{request_id}">') :]
    row = row[: row.index("</tr>")]
    assert "Which river runs through Paris?" in row and "The Seine, mostly." in row
    assert '<td data-label="Score" class="num">87</td>' in row


async def test_column_headers_sort_by_time_latency_tokens_and_cost_both_ways(
    both: Visitor,
) -> None:
    now = time.time()
    ids = await ingest(
        both,
        [
            {"request_end_time": now - 100 + 3, "input_tokens": 5, "price": 0.5},
            {"request_end_time": now - 99 + 9, "input_tokens": 900},
            {"request_end_time": now - 98 + 1, "input_tokens": 50, "model": "no-price-model"},
        ],
    )
    a, b, c = ids
    expected = {
        "time": [c, b, a],
        "latency": [b, a, c],  # 9 s, 3 s, 1 s
        "tokens": [b, c, a],
        "cost": [a, b, c],  # $0.50 logged; 900 gpt-4o tokens priced; no price: last
    }
    for sort, order in expected.items():
        _, page = await both.get(f"/dashboard/requests?sort={sort}")
        assert listed(page) == order, sort
        _, page = await both.get(f"/dashboard/requests?sort={sort}&order=asc")
        assert listed(page) == list(reversed(order)), sort
    _, page = await both.get("/dashboard/requests?sort=latency")
    # The sorted header links to the other order; the others to their own, largest first.
    assert 'href="/dashboard/requests?sort=latency&amp;order=asc" aria-sort="descending"' in page
    assert 'href="/dashboard/requests?sort=tokens"' in page


async def test_the_list_adds_up_the_filtered_requests_with_latency_percentiles(
    both: Visitor,
) -> None:
    now = time.time()
    await ingest(
        both,
        [
            {"request_end_time": now - 100 + n + 1 + n, "status": "ERROR" if n == 0 else "SUCCESS"}
            for n in range(10)
        ]
        + [{"model": "gpt-4o-mini", "request_end_time": now + 50}],
    )
    _, page = await both.get("/dashboard/requests?model=gpt-4o")
    totals = page[page.index('id="totals"') : page.index('id="count"')]
    assert "<b>10</b><span>requests match</span>" in totals
    assert "<b>10.0%</b><span>errors (1)</span>" in totals
    assert "<b>1,100</b><span>tokens (1,000 in)</span>" in totals
    # 10 x (100 in at $2.50/1M + 10 out at $10/1M)
    assert "<b>$0.0035</b><span>cost</span>" in totals
    p50 = re.search(r"<b>([^<]+)</b><span>p50 latency</span>", totals)
    p99 = re.search(r"<b>([^<]+)</b><span>p99 latency</span>", totals)
    assert p50 is not None and p99 is not None
    # Latencies 1 to 10 s: p50 near 5 s, p99 near 10 s (from histograms: within 13%).
    assert 4.35 <= float(p50[1].rstrip(" s")) <= 5.65
    assert 8.7 <= float(p99[1].rstrip(" s")) <= 10.0


async def test_a_text_search_with_more_matches_than_its_cap_says_so_and_pages_on(
    both: Visitor,
) -> None:
    await ingest(both, [{} for _ in range(TEXT_CAP + 3)] + [{"model": "gpt-4o-mini"}])
    _, page = await both.get("/dashboard/requests?q=question")
    count = page[page.index('id="count"') : page.index("</span>", page.index('id="count"'))]
    assert "1,000+ requests match" in count
    assert "More than 1,000 requests match" in page
    assert 'id="next"' in page  # the matches go on past this page
    # A filter no text search is in counts on to 10,000: these 1,003 are exact.
    _, columns = await both.get("/dashboard/requests?model=gpt-4o")
    assert "<b>1,003</b><span>requests match</span>" in columns


async def test_a_prompt_filter_shows_metrics_per_version_and_the_prompts_page_all(
    both: Visitor,
) -> None:
    await both.publish("greet", "hi")
    await both.publish("greet", "hello")
    await ingest(
        both,
        [{"prompt_name": "greet", "prompt_version_number": v, "score": 10 * v} for v in (1, 2, 2)],
    )
    _, page = await both.get("/dashboard/requests?prompt=greet")
    table = page[page.index('id="versions"') : page.index("</table>", page.index('id="versions"'))]
    rows = re.findall(r">v(\d)</a></td>\s*<td class=\"num\">(\d+)</td>", table)
    assert rows == [("2", "2"), ("1", "1")]
    status, metrics = await both.get("/dashboard/requests/prompts?range=24h")
    assert status == 200
    assert re.search(r">v2</a></td>\s*<td class=\"num\">2</td>", metrics)
    assert re.search(r"<td class=\"num\">20</td>\s*</tr>", metrics)  # mean score of v2


async def test_metadata_logged_or_tracked_filters_the_list(both: Visitor) -> None:
    ada, alan, _ = await ingest(
        both,
        [{"metadata": {"user": "ada"}}, {"metadata": {"user": "alan"}}, {"metadata": {}}],
    )
    await both.api("/library-track-metadata", {"request_id": alan, "metadata": {"team": "red"}})
    _, page = await both.get("/dashboard/requests?meta_key=user&meta_value=ada")
    assert listed(page) == [ada]
    _, page = await both.get("/dashboard/requests?meta_key=team")
    assert listed(page) == [alan]
    _, page = await both.get("/dashboard/requests?meta_key=user")
    assert listed(page) == [alan, ada]


async def test_searching_an_id_offers_that_request(both: Visitor) -> None:
    (found, _) = await ingest(both, [{"client_request_id": "req_7f3a"}, {}])
    for search in ("req_7f3a", f"%23{found}"):
        _, page = await both.get(f"/dashboard/requests?q={search}")
        named = re.search(r'id="named">Request <a href="/dashboard/requests/(\d+)">', page)
        assert named is not None and int(named[1]) == found, search
    _, page = await both.get("/dashboard/requests?q=req_nowhere")
    assert 'id="named"' not in page


async def test_export_streams_the_filtered_list_as_csv_with_formulas_defused(
    both: Visitor,
) -> None:
    records: list[dict[str, Any]] = [{"tags": ["keep"]} for _ in range(520)]
    records[3]["input"] = chat('=HYPERLINK("http://evil")')
    records.append({"tags": ["other"]})
    await ingest(both, records)
    _, page = await both.get("/dashboard/requests?tag=keep&sort=tokens")
    link = re.search(r'id="export-csv" href="([^"]+)"', page)
    assert link is not None
    async with both.client.get(html.unescape(link[1])) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert answer.headers["Transfer-Encoding"] == "chunked"  # streamed, not built first
        assert "attachment" in answer.headers["Content-Disposition"]
        text = await answer.text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 520  # more than one of the store's pages, none of the other tag
    assert {r["tags"] for r in rows} == {'["keep"]'}
    evil = next(r for r in rows if "HYPERLINK" in r["input"])
    assert evil["input"].startswith("user: =HYPERLINK") or evil["input"].startswith("'")
    assert all(not r[k].startswith("=") for r in rows for k in r)
    first = rows[0]
    assert (first["cost_usd"], first["cost_estimated"]) == ("0.00035", "true")
    assert first["output"].startswith("assistant: answer")


async def test_export_as_jsonl_has_one_request_a_line_in_the_list_order(both: Visitor) -> None:
    ids = await ingest(both, [{"input_tokens": n} for n in (5, 50, 500)])
    async with both.client.get("/dashboard/requests/export.jsonl?sort=tokens&order=asc") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
        lines = (await answer.text()).splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ids
    assert records[0]["input"] == "user: question 0" and records[0]["cost_estimated"] is True
    assert records[2]["prompt_blueprint"]["prompt_template"]["type"] == "chat"


async def test_the_overview_shows_latency_percentiles(both: Visitor) -> None:
    await ingest(both, [{} for _ in range(4)])
    _, page = await both.get("/dashboard/?range=24h")
    assert "<b>4</b><span>requests</span>" in page
    assert re.search(r"<b>[\d.]+ s</b><span>p95 latency</span>", page)
    assert "Latency percentiles over time" in page


async def test_the_api_list_carries_the_cost_the_dashboard_shows(both: Visitor) -> None:
    await ingest(both, [{"price": 0.25}, {}, {"model": "no-price-model"}])
    async with both.client.get("/promptrun/v1/requests", headers={"X-API-KEY": KEY}) as answer:
        listing = await answer.json()
    costs = [(i["cost"], i["cost_estimated"]) for i in listing["items"]]
    assert costs == [(None, True), (pytest.approx(0.00035), True), (0.25, False)]
    assert listing["total"] == 3


async def test_a_forged_page_position_is_refused_or_harmless_never_a_crash(both: Visitor) -> None:
    await ingest(both, [{}, {}])
    for cursor in ("sx'--~5", "i99999999999999~5", "b00ff~5", "n~5", "fnan~5", "finf~5"):
        for side in ("after", "before"):
            status, page = await both.get(f"/dashboard/requests?{side}={cursor}&sort=tokens")
            assert status in (200, 404), (cursor, status)
            if status == 404:
                assert "start again from its first page" in page
