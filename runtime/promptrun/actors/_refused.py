"""Records the server refused for good, kept where the user can find them: ``refused.jsonl``.

A refused record (invalid for the server, larger than it accepts in one request, a ``track.*``
call naming a request it never got) is not sent again, but it is not thrown away either: it is
appended, with the reason and the time, to ``refused.jsonl`` in the spool folder, one JSON
object a line: ``{"refused_at": ..., "reason": ..., "record": <the record as shipped>}``.
The file is bounded by the spool's ``spool_max_bytes``; past that, refusals are only warned
about. Appends use ``O_APPEND``, so processes sharing the folder do not tear each other's lines.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import msgspec

__all__ = ["DeadLetters"]

_FILE = "refused.jsonl"
_encode = msgspec.json.Encoder().encode


class DeadLetters:
    """Appends refused records to ``<spool folder>/refused.jsonl``."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.path = folder / _FILE
        self.max_bytes = max_bytes

    def keep(self, records: list[bytes], reason: str) -> str:
        """Keep refused records; returns where they went (or why they could not be kept), as
        a sentence for the warning that reports the refusal."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        head = b'{"refused_at":' + _encode(now) + b',"reason":' + _encode(reason) + b',"record":'
        lines = b"".join(head + data + b"}\n" for data in records)
        they, were, are = ("It", "was", "is") if len(records) == 1 else ("They", "were", "are")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            return f"{they} could not be kept in {self.path} ({exc})."
        try:
            if os.fstat(fd).st_size + len(lines) > self.max_bytes:
                return (
                    f"{they} {were} not kept: {self.path} would hold more than spool_max_bytes "
                    f"({self.max_bytes:,} bytes) of refused records."
                )
            os.write(fd, lines)
        except OSError as exc:
            return f"{they} could not be kept in {self.path} ({exc})."
        finally:
            os.close(fd)
        return f"{they} {are} kept in {self.path}."
