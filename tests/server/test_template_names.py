"""A template name is one a URL can carry: names that no HTTP client could fetch are refused
at publish, and names stored before that rule are still served."""

from __future__ import annotations

import pytest

from promptrun.server._state import KEYRING, STORE
from promptrun.server.store.base import NewVersion

from ._api import CHAT, KEY, OPENAI_MODEL, Api

pytestmark = pytest.mark.anyio


def _publish_body(name: str) -> dict[str, object]:
    return {
        "prompt_template": {"prompt_name": name},
        "prompt_version": {"prompt_template": CHAT, "metadata": OPENAI_MODEL},
    }


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\nb", r"'\n'"),
        ("tab\there", r"'\t'"),
        ("nul\x00", r"'\x00'"),
        ("del\x7f", r"'\x7f'"),
        ("c1\x85", r"'\x85'"),
    ],
)
async def test_a_name_with_a_control_character_is_refused_naming_the_character(
    api: Api, name: str, shown: str
) -> None:
    status, answer = await api.call("POST", "/rest/prompt-templates", _publish_body(name))
    assert status == 400
    assert "prompt_template.prompt_name must not contain control characters" in answer["message"]
    assert shown in answer["message"]
    assert (await api.ok("GET", "/prompt-templates"))["items"] == []


@pytest.mark.parametrize(
    ("name", "shown"),
    [("invoice\u202egpj.exe", r"'\u202e'"), ("a\u2066b", r"'\u2066'"), ("x\u200fy", r"'\u200f'")],
)
async def test_a_name_with_a_bidi_control_is_refused_because_it_can_pose_as_another_name(
    api: Api, name: str, shown: str
) -> None:
    status, answer = await api.call("POST", "/rest/prompt-templates", _publish_body(name))
    assert status == 400
    assert (
        "prompt_template.prompt_name must not contain bidirectional controls" in answer["message"]
    )
    assert shown in answer["message"]
    assert (await api.ok("GET", "/prompt-templates"))["items"] == []


@pytest.mark.parametrize("name", [".", ".."])
async def test_dot_names_are_refused_because_http_clients_drop_them_from_urls(
    api: Api, name: str
) -> None:
    status, answer = await api.call("POST", "/rest/prompt-templates", _publish_body(name))
    assert status == 400
    assert f"prompt_template.prompt_name cannot be {name!r}" in answer["message"]
    assert "dot segments" in answer["message"]


@pytest.mark.parametrize(
    "name", ["...", "a.b", ".hidden", "a/b", "naïve ✓", " spaced ", "👩\u200d💻 زبان\u200cها"]
)
async def test_other_unusual_names_publish_and_fetch(api: Api, name: str) -> None:
    await api.publish(name)
    status, answer = await api.fetch(name)
    assert status == 200, answer
    assert answer["prompt_name"] == name


async def test_a_name_with_a_newline_stored_before_the_rule_can_still_be_fetched(
    api: Api,
) -> None:
    app = api.client.server.app
    grant = await app[KEYRING].grant_for_key(KEY)
    assert grant is not None
    await app[STORE].publish(
        grant.workspace, NewVersion(prompt_name="old\nname", prompt_template=CHAT, metadata={})
    )
    status, answer = await api.fetch("old\nname")
    assert status == 200, answer
    assert answer["prompt_name"] == "old\nname"
