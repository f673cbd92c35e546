"""Size limits on request-body fields, as annotated types the Structs use.

msgspec checks them while decoding, so a body that breaks one is a 400 naming the field
(``Expected `str` of length <= 512 - at `$.tags[3]```) before any handler code runs. They
also appear in the server's OpenAPI description. Encoding is not checked: a client can build
any body, and the server is where the limits hold.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "MAX_ENTRIES",
    "MAX_EPOCH",
    "MAX_ID",
    "MAX_ITEMS",
    "MAX_NAME",
    "MAX_PRICE",
    "MAX_TEXT",
    "MAX_TOKENS",
    "Count",
    "Id",
    "Key",
    "Label",
    "Labels",
    "Name",
    "NonEmptyName",
    "Price",
    "StrMap",
    "Tags",
    "Text",
    "Tokens",
]

MAX_NAME = 512
"""Names, labels, identifiers, providers, models, types: characters."""
MAX_TEXT = 65_536
"""Free text (commit messages, error messages, metadata values): characters."""
MAX_ITEMS = 100
"""Lists of names (tags, release labels): items."""
MAX_ENTRIES = 1_000
"""String maps (``track.metadata``): entries."""
MAX_ID = 2**63 - 1
"""Ids and counts: the largest integer SQLite and PostgreSQL ``BIGINT`` store."""
MAX_EPOCH = 4_102_444_800.0
"""Logged times: epoch seconds before 2100-01-01 (a time in milliseconds is far past it)."""
MAX_TOKENS = 1_000_000_000
"""Token counts of one request: far past any model's context, and small enough that the
dashboard's sums over millions of requests stay exact integers."""
MAX_PRICE = 1_000_000.0
"""The logged price of one request: US dollars."""

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
NonEmptyName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
Key = Annotated[str, msgspec.Meta(max_length=MAX_NAME, description="an API key")]
Label = Annotated[str, msgspec.Meta(max_length=MAX_NAME, description="a release label")]
Labels = Annotated[list[Label], msgspec.Meta(max_length=MAX_ITEMS)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Tags = Annotated[list[Name], msgspec.Meta(max_length=MAX_ITEMS)]
StrMap = Annotated[dict[Name, Text], msgspec.Meta(max_length=MAX_ENTRIES)]
Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS, description="a token count")]
Price = Annotated[float, msgspec.Meta(ge=0, le=MAX_PRICE, description="US dollars")]
