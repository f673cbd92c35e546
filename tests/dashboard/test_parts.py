"""The dashboard's pure parts on plain data: prices, charts, diffs, conversations, sessions."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptrun.server.dashboard._charts import (
    count_ceiling,
    nice_ceiling,
    rank_bars,
    time_bars,
    time_lines,
)
from promptrun.server.dashboard._diff import diff_rows, version_text
from promptrun.server.dashboard._format import duration, usd
from promptrun.server.dashboard._messages import conversation_of
from promptrun.server.dashboard._prices import PriceTable, request_cost
from promptrun.server.dashboard._sessions import SessionStore, tokens_match
from promptrun.server.store import sqlite_store
from promptrun.server.store.base import KeyGrant, ModelPrice, NewKey


def test_a_dated_model_snapshot_costs_what_its_family_costs() -> None:
    table = PriceTable()
    assert table.price_of("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert table.price_of("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert table.price_of("claude-haiku-4-5-20251001") == (1.00, 5.00)
    assert table.price_of("gpt-4o") == (2.50, 10.00)


def test_a_model_that_only_shares_letters_with_a_priced_one_has_no_price() -> None:
    table = PriceTable()
    assert table.price_of("gpt-4omega") is None
    assert table.price_of("homegrown") is None
    assert table.cost("homegrown", 10, 10) is None


def test_a_workspace_price_replaces_the_default_and_adds_new_models() -> None:
    table = PriceTable([ModelPrice("gpt-4o", 1.0, 2.0), ModelPrice("mine", 3.0, 4.0)])
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert table.cost("mine-v2", 500_000, 0) == pytest.approx(1.5)
    rows = {row.model: row for row in table.rows()}
    assert rows["gpt-4o"].custom and rows["gpt-4o"].default == (2.50, 10.00)
    assert rows["mine"].custom and rows["mine"].default is None
    assert not rows["gpt-4o-mini"].custom


def test_a_logged_price_wins_over_the_table_and_tokens_are_priced_otherwise() -> None:
    table = PriceTable()
    logged = {"price": 0.3, "model": "gpt-4o", "input_tokens": 10, "output_tokens": 10}
    assert request_cost(table, logged) == (0.3, False)
    unpriced = {**logged, "price": 0.0}
    cost, estimated = request_cost(table, unpriced)
    assert estimated and cost == pytest.approx((10 * 2.5 + 10 * 10) / 1e6)


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False))
def test_a_nice_ceiling_is_a_round_number_at_least_the_value(value: float) -> None:
    top = nice_ceiling(value)
    assert top >= value * (1 - 1e-9)
    mantissa = top / 10 ** int(f"{top:e}".split("e")[1])
    assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0, 10.0)


@given(st.integers(min_value=0, max_value=10**9))
def test_a_count_axis_has_whole_number_ticks(value: int) -> None:
    top = count_ceiling(value)
    assert top >= value and top % 4 == 0


def test_bars_are_as_tall_as_their_share_of_the_axis_and_empty_slots_have_none() -> None:
    chart = time_bars([4, 0, 2], str, str, lambda i, v: f"{i}:{v}")
    assert [bar.title for bar in chart.bars] == ["0:4", "2:2"]
    plot = chart.frame.bottom - chart.frame.top
    assert chart.bars[0].height == pytest.approx(plot)
    assert chart.bars[1].height == pytest.approx(plot / 2)
    assert not chart.empty
    assert time_bars([0, 0], str, str, lambda i, v: "").empty


def test_a_line_breaks_where_a_slot_has_no_data() -> None:
    chart = time_lines([("mean", "m", [1.0, None, 2.0, 3.0])], str, str)
    (line,) = chart.lines
    assert len(line.segments) == 2
    assert len(line.segments[1].split()) == 2
    assert len(line.dots) == 3


def test_ranked_bars_put_the_largest_first_at_full_length() -> None:
    chart = rank_bars([("a", 1.0), ("b", 4.0), ("c", 2.0)], usd)
    assert [row.label for row in chart.rows] == ["b", "c", "a"]
    assert chart.rows[1].bar_width == pytest.approx(chart.rows[0].bar_width / 2)


def test_identical_versions_have_no_diff_rows() -> None:
    lines = version_text({"type": "chat", "messages": []}, {})
    assert diff_rows(lines, lines) == []


def test_a_diff_marks_changed_lines_and_separates_distant_changes() -> None:
    old = [f"line {i}" for i in range(30)]
    new = list(old)
    new[2] = "changed 2"
    new[25] = "changed 25"
    rows = diff_rows(old, new, context=2)
    kinds = [row.kind for row in rows]
    assert kinds.count("gap") == 1
    assert ("removed", 3, None, "line 2") in [(r.kind, r.old, r.new, r.text) for r in rows]
    assert ("added", None, 26, "changed 25") in [(r.kind, r.old, r.new, r.text) for r in rows]


def test_a_logged_request_splits_into_its_input_and_its_output() -> None:
    item = {
        "kind": "log",
        "body": {
            "input": {
                "type": "chat",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            },
            "output": {
                "type": "chat",
                "messages": [{"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
            },
        },
        "prompt_blueprint": {},
    }
    talk = conversation_of(item)
    assert [m.parts[0].text for m in talk.sent] == ["hi"]
    assert [m.parts[0].text for m in talk.received] == ["yo"]


def test_a_tracked_request_with_a_response_shows_its_last_message_as_the_answer() -> None:
    blueprint = {
        "prompt_template": {
            "type": "chat",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "hmm"}],
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"a":1}'},
                        }
                    ],
                },
            ],
            "tools": [{"type": "function", "function": {"name": "w"}}],
        }
    }
    item = {
        "kind": "track",
        "body": {"request_response": {"id": "x"}},
        "prompt_blueprint": blueprint,
    }
    talk = conversation_of(item)
    assert len(talk.sent) == 1
    (answer,) = talk.received
    assert answer.parts[0].kind == "thinking"
    assert answer.tool_calls[0].name == "w"
    assert answer.tool_calls[0].arguments == '{\n  "a": 1\n}'
    assert talk.tools == ["w"]
    failed = {**item, "body": {"request_response": None}}
    assert conversation_of(failed).received == []


def test_an_image_given_as_a_data_url_is_named_not_dumped() -> None:
    data = "data:image/png;base64," + "A" * 10_000
    template = {
        "type": "chat",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data}}]}
        ],
    }
    talk = conversation_of(
        {"kind": "track", "body": {}, "prompt_blueprint": {"prompt_template": template}}
    )
    assert talk.sent[0].parts[0].text == "data:image/png;base64,…"


@pytest.mark.anyio
async def test_a_session_expires_after_its_lifetime_and_ends_at_sign_out(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "s.db")
    await store.start()
    try:
        (key,) = await store.register_keys([NewKey(key_hash="d", workspace="ws", name="k")])
        grant = KeyGrant(key.id, key.workspace, key.role)
        sessions = SessionStore(store, lifetime=60)
        session = await sessions.create(grant, "ws")
        assert 59 < session.expires_at - time.time() <= 60
        found = await sessions.get(session.id)
        assert found is not None
        assert (found.workspace, found.role, found.csrf_token) == (
            key.workspace, "admin", session.csrf_token,
        )  # fmt: skip
        await sessions.end(session.id)
        assert await sessions.get(session.id) is None
        gone = await SessionStore(store, lifetime=-1).create(grant, "ws")
        assert await sessions.get(gone.id) is None
        assert await sessions.get(None) is None and await sessions.get("made-up") is None
        assert await sessions.get("x" * 10_000) is None
        a, b = await sessions.create(grant, "ws"), await sessions.create(grant, "ws")
        assert len({a.id, b.id, a.csrf_token, b.csrf_token}) == 4
        assert len(a.id) >= 40
    finally:
        await store.close()


def test_tokens_match_only_the_same_token() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abd", "abc")
    assert not tokens_match(None, "abc") and not tokens_match("", "abc")


def test_money_and_durations_read_naturally() -> None:
    assert [usd(v) for v in (None, 0, 0.0225, 0.5, 1234.5)] == [
        "—",
        "$0",
        "$0.0225",
        "$0.50",
        "$1,234.50",
    ]
    assert [duration(v) for v in (0, 0.0004, 0.25, 2.5, 75)] == [
        "0 ms",
        "<1 ms",
        "250 ms",
        "2.50 s",
        "1 min 15 s",
    ]
