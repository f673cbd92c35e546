"""The prompt lifecycle on both stores: labels moved without publishing, idempotent publishes."""

from __future__ import annotations

import asyncio

import pytest

from promptrun.server.store.base import NotFoundError, Store, UnstorableText

from ._records import CHAT, version
from .conftest import Workspaces

pytestmark = pytest.mark.anyio

OTHER_CHAT = {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}


async def three_versions(store: Store, ws: int) -> None:
    await store.publish(ws, version(commit_message="one", release_labels=["prod"]))
    await store.publish(ws, version(prompt_template=OTHER_CHAT, release_labels=["staging"]))
    await store.publish(ws, version(metadata={"n": 3}))


async def test_a_label_moves_to_an_older_version_and_back_without_a_new_version(
    store: Store, spaces: Workspaces
) -> None:
    await three_versions(store, spaces.ws)
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 1
    promoted = await store.set_label(spaces.ws, "greet", "prod", 3)
    assert (promoted.label.label, promoted.label.number, promoted.previous_number) == ("prod", 3, 1)
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 3
    rolled_back = await store.move_label(spaces.ws, promoted.label.id, 1)
    assert (rolled_back.label.number, rolled_back.previous_number) == (1, 3)
    assert rolled_back.label.id == promoted.label.id
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 1
    assert (await store.get_version(spaces.ws, "greet")).number == 3  # nothing published
    assert (await store.get_version(spaces.ws, "greet", version=1)).release_labels == ["prod"]


async def test_a_new_label_is_created_on_the_version_named(
    store: Store, spaces: Workspaces
) -> None:
    await three_versions(store, spaces.ws)
    made = await store.set_label(spaces.ws, "greet", "canary", 2)
    assert (made.label.number, made.previous_number, made.prompt_name) == (2, None, "greet")
    listed = await store.template_labels(spaces.ws, "greet")
    assert [(x.label, x.number) for x in listed.labels] == [
        ("canary", 2),
        ("prod", 1),
        ("staging", 2),
    ]
    assert listed.template_id == made.template_id
    by_id = await store.template_labels(spaces.ws, made.template_id)
    assert by_id.prompt_name == "greet"


async def test_removing_a_label_says_where_it_was_and_fetching_by_it_then_fails(
    store: Store, spaces: Workspaces
) -> None:
    await three_versions(store, spaces.ws)
    staging = next(
        x for x in (await store.template_labels(spaces.ws, "greet")).labels if x.label == "staging"
    )
    removed = await store.delete_label(spaces.ws, staging.id)
    assert (removed.removed, removed.previous_number, removed.label.label) == (True, 2, "staging")
    with pytest.raises(NotFoundError, match="has no release label 'staging'; its labels: 'prod'"):
        await store.get_version(spaces.ws, "greet", label="staging")
    with pytest.raises(NotFoundError, match=f"release label {staging.id} not found"):
        await store.delete_label(spaces.ws, staging.id)


async def test_label_moves_name_what_does_not_exist(store: Store, spaces: Workspaces) -> None:
    await three_versions(store, spaces.ws)
    with pytest.raises(NotFoundError, match=r"'greet' has no version 9; versions are 1..3"):
        await store.set_label(spaces.ws, "greet", "prod", 9)
    with pytest.raises(NotFoundError, match="prompt template 'nope' not found"):
        await store.set_label(spaces.ws, "nope", "prod", 1)
    with pytest.raises(NotFoundError, match="release label 999999 not found"):
        await store.move_label(spaces.ws, 999_999, 1)
    with pytest.raises(NotFoundError, match="has no version"):
        await store.set_label(spaces.ws, "greet", "prod", 2**70)
    # Nothing moved on the way.
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 1


async def test_another_workspaces_labels_are_not_found(store: Store, spaces: Workspaces) -> None:
    await three_versions(store, spaces.ws)
    prod = (await store.template_labels(spaces.ws, "greet")).labels[0]
    with pytest.raises(NotFoundError):
        await store.move_label(spaces.other, prod.id, 2)
    with pytest.raises(NotFoundError):
        await store.delete_label(spaces.other, prod.id)
    with pytest.raises(NotFoundError):
        await store.template_labels(spaces.other, "greet")
    with pytest.raises(NotFoundError):
        await store.set_label(spaces.other, prod.id, "prod", 1)
    assert (await store.get_version(spaces.ws, "greet", label="prod")).number == 1


async def test_a_template_named_with_digits_is_found_by_name_before_id(
    store: Store, spaces: Workspaces
) -> None:
    first = await store.publish(spaces.ws, version("greet"))
    digits = str(first.template_id + 1000)
    await store.publish(spaces.ws, version(digits))
    assert (await store.template_labels(spaces.ws, digits)).prompt_name == digits
    assert (await store.template_labels(spaces.ws, str(first.template_id))).prompt_name == "greet"


async def test_a_label_that_the_database_cannot_hold_is_refused(
    store: Store, spaces: Workspaces, store_kind: str
) -> None:
    await three_versions(store, spaces.ws)
    if store_kind == "postgres":
        with pytest.raises(UnstorableText):
            await store.set_label(spaces.ws, "greet", "a\x00b", 1)


async def test_publishing_the_latest_content_again_creates_nothing(
    store: Store, spaces: Workspaces
) -> None:
    first = await store.publish(spaces.ws, version(commit_message="one", release_labels=["prod"]))
    again = await store.publish(spaces.ws, version(commit_message="two", release_labels=["prod"]))
    assert (again.number, again.unchanged, first.unchanged) == (1, True, False)
    assert again.commit_message == "one"  # the version as it is
    plain = await store.publish(spaces.ws, version())  # no labels asked: nothing to move
    assert (plain.number, plain.unchanged, plain.release_labels) == (1, True, ["prod"])
    reordered = {"messages": CHAT["messages"], "type": "chat"}  # key order does not matter
    assert (await store.publish(spaces.ws, version(prompt_template=reordered))).unchanged


async def test_a_publish_that_changes_content_or_asks_for_a_label_makes_a_version(
    store: Store, spaces: Workspaces
) -> None:
    await store.publish(spaces.ws, version(metadata={"temperature": 1}))
    float_one = await store.publish(spaces.ws, version(metadata={"temperature": 1.0}))
    assert (float_one.number, float_one.unchanged) == (2, False)  # 1.0 is not 1 to a provider
    labelled = await store.publish(
        spaces.ws, version(metadata={"temperature": 1.0}, release_labels=["prod"])
    )
    assert (labelled.number, labelled.release_labels) == (3, ["prod"])
    changed = await store.publish(spaces.ws, version(prompt_template=OTHER_CHAT))
    assert changed.number == 4
    # The latest is compared, not any older version.
    back = await store.publish(spaces.ws, version(metadata={"temperature": 1.0}))
    assert (back.number, back.unchanged) == (5, False)


async def test_identical_publishes_at_once_make_one_version(
    store: Store, spaces: Workspaces
) -> None:
    published = await asyncio.gather(*(store.publish(spaces.ws, version()) for _ in range(8)))
    assert {v.number for v in published} == {1}
    assert sum(not v.unchanged for v in published) == 1
