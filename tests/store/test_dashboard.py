"""The dashboard's reads on both stores: filters, time series, usage, prices, filter menus.

tests/pg/test_dashboard_queries.py checks that both answer every filter alike on a larger log.
"""

from __future__ import annotations

import pytest

from promptrun.server.store.base import ModelPrice, PageRequest, RequestQuery, Store, TrackCall

from ._records import row, version
from .conftest import Workspaces

pytestmark = pytest.mark.anyio
T0 = 1_700_000_000.0


@pytest.fixture
async def logged(store: Store, spaces: Workspaces) -> Store:
    await store.publish(spaces.ws, version("greet"))
    await store.ingest(
        spaces.ws,
        [
            row("r0", start_time=T0, end_time=T0 + 2, model="m1", input_tokens=10, price=0.5),
            row("r1", start_time=T0 + 30, end_time=T0 + 31, model="m1", status="ERROR",
                tags='["x", "y"]', output_tokens=4),
            row("r2", start_time=T0 + 70, end_time=T0 + 70, model="m2", prompt_name="greet",
                provider="anthropic", blueprint='{"text": "100% Punch_card"}'),
        ],
    )  # fmt: skip
    await store.ingest(spaces.other, [row("theirs", model="m9")])
    return store


async def test_every_filter_narrows_the_search(logged: Store, spaces: Workspaces) -> None:
    async def found(**filters: object) -> list[str]:
        query = RequestQuery(**filters)  # type: ignore[arg-type]
        page = await logged.request_page(spaces.ws, query, PageRequest(limit=10), costs={})
        assert page.total == len(page.items) and page.total_exact
        return [i["client_request_id"] for i in page.items]

    assert await found() == ["r2", "r1", "r0"]
    assert await found(model="m1") == ["r1", "r0"]
    assert await found(tag="y") == ["r1"]
    assert await found(status="ERROR", tag="x") == ["r1"]
    assert await found(provider="anthropic", prompt_name="greet") == ["r2"]
    assert await found(since=T0 + 30, until=T0 + 70) == ["r1"]
    assert await found(text="punch_CARD") == ["r2"]
    assert await found(text="100%") == ["r2"]
    assert await found(text="0% p") == ["r2"]
    assert await found(text="_c") == ["r2"]
    assert await found(text="nowhere") == []
    assert await found(model="m\x00") == []
    first = await logged.request_page(spaces.ws, RequestQuery(), PageRequest(limit=1), costs={})
    second = await logged.request_page(
        spaces.ws, RequestQuery(), PageRequest(limit=1, after=first.after), costs={}
    )
    assert (second.total, [i["client_request_id"] for i in second.items]) == (3, ["r1"])


async def test_series_and_usage_add_up_the_log(logged: Store, spaces: Workspaces) -> None:
    series = await logged.request_series(spaces.ws, since=T0, until=T0 + 120, bucket=60)
    assert [(b.start, b.requests, b.errors) for b in series] == [(T0, 2, 1), (T0 + 60, 1, 0)]
    assert series[0].max_latency == 2.0 and series[0].mean_latency == 1.5
    usage = await logged.usage_by_model(spaces.ws)
    assert [(u.model, u.requests, u.input_tokens, u.output_tokens) for u in usage] == [
        ("m1", 2, 10, 4),
        ("m2", 1, 0, 0),
    ]
    assert (usage[0].logged_price, usage[0].unpriced_output_tokens) == (0.5, 4)
    later = await logged.usage_by_model(spaces.ws, since=T0 + 60)
    assert [u.model for u in later] == ["m2"]


async def test_filter_menus_offer_what_the_workspace_logged(
    logged: Store, spaces: Workspaces
) -> None:
    await logged.ingest(
        spaces.ws,
        [TrackCall(endpoint="prompt", request_ref="r0", values={"prompt_name": "greet"})],
    )
    facets = await logged.request_facets(spaces.ws)
    assert facets == {
        "prompts": ["greet"],
        "providers": ["anthropic", "openai"],
        "models": ["m1", "m2"],
        "statuses": ["ERROR", "SUCCESS"],
        "tags": ["t1", "x", "y"],
    }


async def test_prices_are_set_replaced_listed_and_deleted(store: Store, spaces: Workspaces) -> None:
    await store.set_model_price(spaces.ws, ModelPrice("b-model", 1.0, 2.0))
    await store.set_model_price(spaces.ws, ModelPrice("a-model", 3.0, 4.0))
    await store.set_model_price(spaces.ws, ModelPrice("b-model", 5.0, 6.0))
    assert await store.model_prices(spaces.ws) == [
        ModelPrice("a-model", 3.0, 4.0),
        ModelPrice("b-model", 5.0, 6.0),
    ]
    assert await store.model_prices(spaces.other) == []
    await store.delete_model_price(spaces.ws, "a-model")
    await store.delete_model_price(spaces.ws, "never\x00")
    assert [p.model for p in await store.model_prices(spaces.ws)] == ["b-model"]
