"""The request log on both stores: store, ingest idempotently, track, read back."""

from __future__ import annotations

import asyncio

import pytest

from promptrun.server.store.base import NotFoundError, Rejected, Store, TrackCall

from ._records import row, version
from .conftest import Workspaces

pytestmark = pytest.mark.anyio


async def test_a_batch_is_stored_in_order_with_duplicates_and_rejections_answered(
    store: Store, spaces: Workspaces
) -> None:
    group = await store.create_group(spaces.ws)
    foreign_group = await store.create_group(spaces.other)
    results = await store.ingest(
        spaces.ws,
        [
            row("a", group_id=group, score=7),
            row("b"),
            row("a"),
            Rejected("r", "refused upstream"),
            row("c", group_id=foreign_group),
            TrackCall(endpoint="metadata", request_ref="b", values={"k": "v"}, client_call_id="m1"),
            TrackCall(endpoint="metadata", request_ref="b", values={"k": "w"}, client_call_id="m1"),
            TrackCall(
                endpoint="score", request_ref="nope", values={"score": 1}, client_call_id="m2"
            ),
            row(None),
            row("d"),
        ],
    )
    assert [(r.client_request_id, r.status) for r in results] == [
        ("a", "stored"), ("b", "stored"), ("a", "duplicate"), ("r", "rejected"),
        ("c", "rejected"), ("m1", "stored"), ("m1", "duplicate"), ("m2", "rejected"),
        ("", "stored"), ("d", "stored"),
    ]  # fmt: skip
    assert results[3].error == "refused upstream"
    assert f"group {foreign_group} not found" in (results[4].error or "")
    assert "request 'nope' not found" in (results[7].error or "")
    ids = [r.request_id for r in results]
    assert ids[2] == ids[0]
    assert ids[5] == ids[6] == ids[1]
    stored = [ids[0], ids[1], ids[8], ids[9]]
    assert stored == sorted(stored)  # ids follow the batch's order
    detail = await store.get_request(spaces.ws, "a")
    assert (detail["groups"], detail["scores"]) == ([group], {"default": 7})
    assert (await store.get_request(spaces.ws, "b"))["metadata"]["k"] == "v"
    again = await store.ingest(spaces.ws, [row("a"), row("b"), row("d")])
    assert [(r.status, r.request_id) for r in again] == [
        ("duplicate", ids[0]),
        ("duplicate", ids[1]),
        ("duplicate", ids[9]),
    ]
    _, total = await store.list_requests(spaces.ws, limit=1, offset=0, prompt_name=None)
    assert total == 4


async def test_a_track_call_that_fails_in_a_batch_undoes_only_itself(
    store: Store, spaces: Workspaces
) -> None:
    (base,) = await store.ingest(spaces.ws, [row("base")])
    results = await store.ingest(
        spaces.ws,
        [
            TrackCall(endpoint="prompt", request_ref="base", values={"prompt_name": "nothing"},
                      client_call_id="p1"),
            TrackCall(endpoint="score", request_ref="base", values={"score": 3, "name": "q"},
                      client_call_id="s1"),
        ],
    )  # fmt: skip
    assert [r.status for r in results] == ["rejected", "stored"]
    # The rejected call's client id was not kept: sent again once its template exists, it applies.
    await store.publish(spaces.ws, version("nothing"))
    (retried,) = await store.ingest(
        spaces.ws,
        [TrackCall(endpoint="prompt", request_ref="base", values={"prompt_name": "nothing"},
                   client_call_id="p1")],
    )  # fmt: skip
    assert (retried.status, retried.request_id) == ("stored", base.request_id)
    detail = await store.get_request(spaces.ws, "base")
    assert (detail["prompt_name"], detail["prompt_version"]) == ("nothing", 1)
    assert detail["scores"] == {"q": 3}


async def test_one_insert_answers_with_the_first_id_of_its_client_id(
    store: Store, spaces: Workspaces
) -> None:
    first = await store.insert_request(spaces.ws, row("same"))
    assert await store.insert_request(spaces.ws, row("same", model="other")) == first
    assert await store.insert_request(spaces.other, row("same")) != first  # per workspace
    ids = await asyncio.gather(*(store.insert_request(spaces.ws, row()) for _ in range(50)))
    assert len(set(ids)) == 50
    with pytest.raises(NotFoundError, match="group 999 not found in this workspace"):
        await store.insert_request(spaces.ws, row(group_id=999))
    with pytest.raises(NotFoundError, match="group"):
        await store.insert_request(spaces.ws, row(group_id=2**70))


async def test_track_calls_apply_metadata_scores_prompts_and_groups(
    store: Store, spaces: Workspaces
) -> None:
    await store.publish(spaces.ws, version(release_labels=["prod"]))
    await store.publish(spaces.ws, version())
    request_id = await store.insert_request(spaces.ws, row("r", metadata='{"a": "1"}'))
    group = await store.create_group(spaces.ws)

    def call(endpoint: str, **values: object) -> TrackCall:
        return TrackCall(endpoint=endpoint, request_ref=request_id, values=values)  # type: ignore[arg-type]

    assert await store.track(spaces.ws, call("metadata", b="2", a="3")) == request_id
    await store.track(spaces.ws, call("score", score=80, name=None))
    await store.track(spaces.ws, call("score", score=5, name="accuracy"))
    await store.track(spaces.ws, call("prompt", prompt_name="greet", label="prod",
                                      prompt_input_variables={"name": "Ada"}))  # fmt: skip
    await store.track(spaces.ws, call("group", group_id=group))
    await store.track(spaces.ws, call("group", group_id=group))  # twice: one membership
    detail = await store.get_request(spaces.ws, request_id)
    assert detail["metadata"] == {"a": "3", "b": "2"}
    assert detail["scores"] == {"accuracy": 5, "default": 80}
    assert detail["score"] == 80
    assert (detail["prompt_name"], detail["prompt_version"]) == ("greet", 1)
    assert detail["input_variables"] == {"name": "Ada"}
    assert detail["groups"] == [group]
    with pytest.raises(NotFoundError, match="not found in this workspace"):
        await store.track(spaces.other, call("score", score=1, name=None))
    with pytest.raises(NotFoundError, match="group"):
        await store.track(spaces.ws, call("group", group_id=group + 100))


async def test_a_track_call_retried_at_once_applies_once(store: Store, spaces: Workspaces) -> None:
    await store.ingest(spaces.ws, [row("base")])
    calls = [
        TrackCall(endpoint="score", request_ref="base", values={"score": n, "name": f"s{n}"},
                  client_call_id=f"call{n % 5}")
        for n in range(20)
    ]  # fmt: skip
    results = await asyncio.gather(*(store.ingest(spaces.ws, [c]) for c in calls))
    stored = sorted(r[0].client_request_id for r in results if r[0].status == "stored")
    assert stored == [f"call{n}" for n in range(5)]
    assert len((await store.get_request(spaces.ws, "base"))["scores"]) == 5
    # Through the single-call path, a client call id already applied is answered, not re-run.
    again = TrackCall(endpoint="score", request_ref="base", values={"score": 99, "name": "s0"},
                      client_call_id="call0")  # fmt: skip
    assert await store.track(spaces.ws, again) > 0
    assert (await store.get_request(spaces.ws, "base"))["scores"]["s0"] == 0


async def test_templates_are_linked_by_name_or_id_within_the_workspace(
    store: Store, spaces: Workspaces
) -> None:
    mine = await store.publish(spaces.ws, version("greet"))
    theirs = await store.publish(spaces.other, version("theirs"))
    results = await store.ingest(
        spaces.ws,
        [
            row("by-name", prompt_name="greet"),
            row("by-id", prompt_id=mine.template_id),
            row("foreign-id", prompt_id=theirs.template_id),
            row("huge-id", prompt_id=2**70),
            row("unknown-name", prompt_name="nothing"),
        ],
    )
    assert {r.status for r in results} == {"stored"}
    linked = {}
    for client_id in ("by-name", "by-id", "foreign-id", "huge-id", "unknown-name"):
        detail = await store.get_request(spaces.ws, client_id)
        linked[client_id] = (detail["prompt_id"], detail["prompt_name"])
    assert linked == {
        "by-name": (mine.template_id, "greet"),
        "by-id": (mine.template_id, "greet"),
        "foreign-id": (None, None),
        "huge-id": (None, None),
        "unknown-name": (None, "nothing"),
    }


async def test_the_log_reads_back_newest_first_and_by_client_or_server_id(
    store: Store, spaces: Workspaces
) -> None:
    await store.ingest(
        spaces.ws,
        [row(f"r{n}", prompt_name="greet" if n % 2 else None) for n in range(5)],
    )
    await store.ingest(
        spaces.ws,
        [TrackCall(endpoint="metadata", request_ref="r1", values={"x": "y"}, client_call_id="t")],
    )
    items, total = await store.list_requests(spaces.ws, limit=2, offset=1, prompt_name=None)
    assert total == 5
    assert [i["client_request_id"] for i in items] == ["r3", "r2"]
    assert "body" not in items[0] and items[0]["tags"] == ["t1"]
    items, total = await store.list_requests(spaces.ws, limit=10, offset=0, prompt_name="greet")
    assert (total, [i["client_request_id"] for i in items]) == (2, ["r3", "r1"])
    assert await store.list_requests(spaces.other, limit=10, offset=0, prompt_name=None) == ([], 0)
    by_client = await store.get_request(spaces.ws, "r4")
    assert await store.get_request(spaces.ws, by_client["id"]) == by_client
    assert by_client["body"] == {"kwargs": {}}
    assert by_client["prompt_blueprint"]["prompt_template"]["type"] == "chat"
    assert by_client["request_start_time"] == 1_700_000_000.0
    for ref in ("missing", 2**70, by_client["id"] + 1000):
        with pytest.raises(NotFoundError, match="not found in this workspace"):
            await store.get_request(spaces.ws, ref)
    with pytest.raises(NotFoundError):
        await store.get_request(spaces.other, by_client["id"])
