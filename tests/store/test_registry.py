"""The prompt registry on both stores: publish, resolve a version, list, the dashboard's views."""

from __future__ import annotations

import asyncio

import pytest

from promptrun.server.store.base import NotFoundError, Store

from ._records import version
from .conftest import Workspaces

pytestmark = pytest.mark.anyio


async def test_publishing_numbers_versions_and_moves_labels(
    store: Store, spaces: Workspaces
) -> None:
    first = await store.publish(
        spaces.ws, version(commit_message="one", tags=["a"], release_labels=["prod", "beta"])
    )
    second = await store.publish(spaces.ws, version(metadata={"n": 2}, release_labels=["prod"]))
    assert (first.number, second.number) == (1, 2)
    assert first.release_labels == ["beta", "prod"]
    assert second.release_labels == ["prod"]
    assert second.template_id == first.template_id
    assert second.tags == ["a"]  # kept when a publish names none
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 2
    assert (await store.get_version(spaces.ws, "greet", label="beta")).number == 1
    assert (await store.get_version(spaces.ws, "greet", version=1)).commit_message == "one"
    latest = await store.get_version(spaces.ws, "greet")
    assert (latest.number, latest.release_labels) == (2, ["prod"])
    third = await store.publish(spaces.ws, version(metadata={"n": 3}, tags=["b"]))
    assert third.tags == ["b"]


async def test_a_fetch_sees_a_publish_made_after_it_was_answered(
    store: Store, spaces: Workspaces
) -> None:
    await store.publish(spaces.ws, version(release_labels=["prod"]))
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 1
    await store.publish(spaces.ws, version(metadata={"n": 2}, release_labels=["prod"]))
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 2
    assert (await store.get_version(spaces.ws, "greet")).number == 2


async def test_publishing_one_template_at_once_numbers_every_version(
    store: Store, spaces: Workspaces
) -> None:
    published = await asyncio.gather(
        *(store.publish(spaces.ws, version(metadata={"n": n})) for n in range(10))
    )
    assert sorted(v.number for v in published) == list(range(1, 11))


async def test_metadata_filters_pick_the_newest_matching_version_else_the_latest(
    store: Store, spaces: Workspaces
) -> None:
    await store.publish(spaces.ws, version(metadata={"env": "a", "n": 1}))
    await store.publish(spaces.ws, version(metadata={"env": "b", "n": 1}))
    await store.publish(spaces.ws, version(metadata={"env": "a", "n": 2}))
    pick = store.get_version
    assert (await pick(spaces.ws, "greet", metadata_filters={"env": "b"})).number == 2
    assert (await pick(spaces.ws, "greet", metadata_filters={"env": "a"})).number == 3
    assert (await pick(spaces.ws, "greet", metadata_filters={"n": "1"})).number == 2
    assert (await pick(spaces.ws, "greet", metadata_filters={"env": "z"})).number == 3
    assert (await pick(spaces.ws, "greet", version=1, metadata_filters={"env": "b"})).number == 1


async def test_what_a_workspace_does_not_have_is_not_found_with_what_it_has(
    store: Store, spaces: Workspaces
) -> None:
    await store.publish(spaces.ws, version(release_labels=["prod", "beta"]))
    with pytest.raises(NotFoundError, match="'greet' not found in this workspace; publish it"):
        await store.get_version(spaces.other, "greet")
    with pytest.raises(NotFoundError, match=r"has no version 7; versions are 1\.\.1"):
        await store.get_version(spaces.ws, "greet", version=7)
    with pytest.raises(NotFoundError, match="no release label 'dev'; its labels: 'beta', 'prod'"):
        await store.get_version(spaces.ws, "greet", label="dev")
    with pytest.raises(NotFoundError, match="not found"):
        await store.get_version(spaces.ws, "gre\x00et")
    with pytest.raises(NotFoundError, match="not found"):
        await store.template_detail(spaces.other, "greet")


async def test_templates_list_oldest_first_at_their_latest_version_or_a_label(
    store: Store, spaces: Workspaces
) -> None:
    for name in ("b", "a", "c"):
        await store.publish(spaces.ws, version(name, release_labels=["prod"]))
    await store.publish(spaces.ws, version("a", metadata={"n": 2}))
    await store.publish(spaces.other, version("mine"))
    items, total = await store.list_templates(spaces.ws, page=1, per_page=2, label=None)
    assert total == 3
    assert [(v.prompt_name, v.number) for v in items] == [("b", 1), ("a", 2)]
    items, total = await store.list_templates(spaces.ws, page=2, per_page=2, label=None)
    assert [v.prompt_name for v in items] == ["c"]
    items, total = await store.list_templates(spaces.ws, page=1, per_page=10, label="prod")
    assert [(v.prompt_name, v.number) for v in items] == [("b", 1), ("a", 1), ("c", 1)]
    assert await store.list_templates(spaces.ws, page=1, per_page=10, label="none") == ([], 0)
    assert await store.list_templates(spaces.ws, page=1, per_page=10, label="\x00") == ([], 0)


async def test_the_dashboard_summarises_templates_and_their_versions(
    store: Store, spaces: Workspaces
) -> None:
    await store.publish(spaces.ws, version("zeta", tags=["x"], release_labels=["prod"]))
    await store.publish(spaces.ws, version("alpha", commit_message="first"))
    await store.publish(
        spaces.ws, version("alpha", commit_message="second", release_labels=["b", "a"])
    )
    summaries, total = await store.template_summaries(spaces.ws, limit=10, offset=0)
    assert total == 2
    assert [(s.name, s.latest_version, s.versions, s.labels, s.tags) for s in summaries] == [
        ("alpha", 2, 2, ["a", "b"], []),
        ("zeta", 1, 1, ["prod"], ["x"]),
    ]
    detail = await store.template_detail(spaces.ws, "alpha")
    assert detail.name == "alpha"
    assert [(v.number, v.commit_message, v.labels) for v in detail.versions] == [
        (2, "second", ["a", "b"]),
        (1, "first", []),
    ]
