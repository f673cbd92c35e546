"""Reading JSON columns back: the first entries of a huge object, the rest of a body whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptrun.server.store.queries.stored_json import (
    SMALL,
    bounded_body,
    bounded_object,
    object_head,
)

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8
)


@given(st.dictionaries(st.text(), _values, max_size=12), st.integers(0, 15), st.booleans())
def test_the_head_of_an_object_is_its_first_entries_as_a_full_decode_reads_them(
    whole: dict[str, Any], limit: int, spaced: bool
) -> None:
    text = json.dumps(whole, indent=1 if spaced else None, ensure_ascii=False)
    head, more = object_head(text, limit)
    assert head == dict(list(whole.items())[:limit])
    assert more == (len(whole) > limit)


@pytest.mark.parametrize("text", ["[1, 2]", '"x"', "{", '{"a" 1}', '{"a": 1 "b": 2}', "{1: 2}"])
def test_what_is_not_an_object_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        object_head(text, 10)


def test_a_huge_stored_object_is_read_in_part_and_a_small_one_whole() -> None:
    huge = json.dumps({str(i): "v" for i in range(50_000)})
    assert len(huge) > SMALL
    head, cut = bounded_object(huge, 1_000)
    assert (len(head), cut) == (1_000, True)
    assert list(head)[-1] == "999"
    assert bounded_object(json.dumps({"a": "b"}), 1_000) == ({"a": "b"}, False)
    small_but_many = json.dumps({str(i): 0 for i in range(2_000)})
    assert bounded_object(small_but_many, 1_000)[0] == {str(i): 0 for i in range(1_000)}
    assert bounded_object("not json " * 10_000, 5) == ("not json " * 10_000, False)
    assert bounded_object(b"\xff", 5) == (b"\xff", False)  # a BLOB as it is stored


def test_a_stored_body_keeps_everything_but_the_metadata_it_leaves_out() -> None:
    body = {
        "model": "m",
        "input": {"text": "x" * SMALL},
        "metadata": {str(i): "v" for i in range(3_000)},
    }
    read, cut = bounded_body(json.dumps(body), 1_000)
    assert cut
    assert read["model"] == "m"
    assert read["input"] == body["input"]
    assert read["metadata"] == {str(i): "v" for i in range(1_000)}
    small = {"model": "m", "metadata": {"a": "b"}}
    assert bounded_body(json.dumps(small), 1_000) == (small, False)
    assert bounded_body("[]", 1_000) == ([], False)
    assert bounded_body("}{" * SMALL, 1_000) == ("}{" * SMALL, False)
