"""refused.jsonl: records the server refused, kept with their reason, within a bound."""

from __future__ import annotations

import json
from pathlib import Path

from promptrun.actors._refused import DeadLetters


def test_refused_records_are_kept_a_line_each_with_their_reason(tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path / "spool", max_bytes=1 << 20)
    said = dead.keep([b'{"a":1}', b'{"b":2}'], "invalid (HTTP 400)")
    assert said == f"They are kept in {tmp_path / 'spool' / 'refused.jsonl'}."
    lines = [json.loads(x) for x in dead.path.read_text().splitlines()]
    assert [x["record"] for x in lines] == [{"a": 1}, {"b": 2}]
    assert {x["reason"] for x in lines} == {"invalid (HTTP 400)"}


def test_refused_records_past_the_bound_are_not_kept_and_the_sentence_says_so(
    tmp_path: Path,
) -> None:
    dead = DeadLetters(tmp_path, max_bytes=200)
    assert dead.keep([b'{"a":1}'], "x").startswith("It is kept in")
    said = dead.keep([b'{"big":"' + b"x" * 300 + b'"}'], "too big")
    assert said.startswith(f"It was not kept: {dead.path} would hold more than spool_max_bytes")
    assert len(dead.path.read_text().splitlines()) == 1
