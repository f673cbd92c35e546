"""Size limits on request-body fields, as annotated types the Structs use.

msgspec checks them while decoding, so a body that breaks one is a 400 naming the field
(``Expected `str` of length <= 512 - at `$.tags[3]```) before any handler code runs. They
also appear in the server's OpenAPI description. Encoding is not checked: a client can build
any body, and the server is where the limits hold.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from promptrun.wire._metadata import (
    MAX_METADATA_BYTES,
    MAX_METADATA_KEY,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
)

__all__ = [
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
    "Metadata",
    "Name",
    "NonEmptyName",
    "Price",
    "StrMetadata",
    "Tags",
    "Text",
    "Tokens",
]

MAX_NAME = 512
"""Names, labels, identifiers, providers, models, types: characters."""
MAX_TEXT = 65_536
"""Free text (commit messages, error messages): characters."""
MAX_ITEMS = 100
"""Lists of names (tags, release labels): items."""
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
# Metadata's limits are checked by the bodies (``wire._metadata``), for a message that says
# what to do; these say them in the OpenAPI description.
_METADATA = (
    f"at most {MAX_METADATA_KEYS:,} keys of up to {MAX_METADATA_KEY} characters; values of up "
    f"to {MAX_METADATA_VALUE:,} characters, and a string value with its key at most "
    f"{MAX_METADATA_BYTES:,} bytes of UTF-8"
)
Metadata = Annotated[
    dict[str, Any], msgspec.Meta(description=_METADATA + " (other values: their JSON)")
]
StrMetadata = Annotated[dict[str, str], msgspec.Meta(description=_METADATA)]
Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS, description="a token count")]
Price = Annotated[float, msgspec.Meta(ge=0, le=MAX_PRICE, description="US dollars")]
