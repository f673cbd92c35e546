"""The few places where SQLite and PostgreSQL really differ, as hooks the operations call.

Everything else in ``store/queries/`` is one piece of SQL for both. A hook returns a SQL
fragment made of literals and the placeholders it is given (never of values: the SQL check
in ``tests/security`` follows each hook into both dialects), a parameter value, or a small
operation of its own (``yield from d.hook(...)``) where the two schemas store a thing
differently:

- text: PostgreSQL text cannot hold NUL characters (``check_text``, ``text_ok``,
  ``safe_text``, ``row_problem``), and orders by the database's collation unless told
  ``COLLATE "C"`` (``binary``);
- arrays: ``= ANY($2::int8[])`` against SQLite's ``IN (SELECT value FROM json_each($2))``
  (``any_of``, ``array``); ``floor()`` (``floor_int``); the larger of two (``greatest``);
- the request log: PostgreSQL keeps a request's body and blueprint in ``request_payloads``,
  its conversation text in ``search_text`` under a trigram index and its tags as JSONB under
  a GIN index; SQLite keeps all in ``requests``, its tags also in ``request_tags``, and its
  conversation text in an FTS5 trigram index that catches up after ingestion
  (``insert_requests``, ``requests_with_payload``, ``tag_rows``, ``tag_filter``,
  ``tag_source``, ``save_tags``, ``metadata_filter``, ``copy_metadata_sql``, ``text_filter``,
  ``text_source``, ``text_pattern``, ``text_phrase``, ``plan_each_query``, ``index_hint``);
  SQLite fills what is derived from requests after ingestion (``defers``, ``derived_upto``,
  ``catch_up``) where PostgreSQL writes it with them;
- migrations: the ``schema_version`` table each has, and PostgreSQL's lock that makes
  processes starting together take turns (``lock_schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

from promptrun.server.store.base import RequestRow
from promptrun.server.store.queries._sql import Op

__all__ = ["Dialect"]


class Dialect(Protocol):
    name: str  # "sqlite" or "postgres": also the folder of its migrations
    binary: str  # appended to ORDER BY a text column: order by code point on both
    schema_version_table: str  # DDL creating ``schema_version`` if it is missing

    def text_ok(self, *values: str | None) -> bool:
        """Whether the database can hold (and so can match) these texts."""

    def check_text(self, *values: str | None) -> None:
        """Raise ``UnstorableText`` for a text the database cannot hold."""

    def safe_text(self, value: str | None) -> str | None:
        """The text, altered only as far as the database needs to hold it."""

    def row_problem(self, row: RequestRow) -> str | None:
        """Why this request cannot be stored, or None."""

    def any_of(self, placeholder: str, sql_type: Literal["int8", "text"]) -> str:
        """``IN``-like SQL matching any element of the array parameter at ``placeholder``."""

    def array(self, values: Iterable[int] | Iterable[str]) -> Any:
        """The parameter value for :meth:`any_of`."""

    def floor_int(self, expression: str) -> str: ...

    def total(self, expression: str) -> str:
        """A float sum that is 0 for no rows and never overflows, whatever a row holds."""
        ...

    def insert_requests(
        self, workspace: int, now: float, rows: Sequence[RequestRow]
    ) -> Op[list[int | None]]:
        """Insert the rows (no client id twice among them), skipping client ids already
        stored: each row's new id, increasing in the rows' order, or None where skipped."""

    requests_with_payload: str  # FROM clause giving requests with ``body`` and ``blueprint``
    fence: str  # ends a subquery the planner must not merge into the query around it
    typed: bool  # parameters must be of their column's type (PostgreSQL), not anything
    # Whether rollups, tag and metadata rows and the text index are filled after ingestion
    # (catch_up) rather than with each request; derived_upto is SQL for the last request id
    # they cover (the ones after it are read from the log itself).
    defers: bool
    derived_upto: str
    by_id: str  # after ``requests r``: read rows by id range only (SQLite's NOT INDEXED)

    def greatest(self, a: str, b: str) -> str: ...

    def tag_rows(self, row: str) -> tuple[str, str]:
        """A FROM item ``t`` with one row per tag of request ``row``, and the SQL of the tag
        (text) in it."""

    def tag_filter(self, placeholder: str) -> str:
        """SQL matching a request ``r`` tagged with the parameter at ``placeholder``."""

    def tag_source(self, workspace: str, placeholder: str) -> str | None:
        """A FROM item ``s`` (column ``s.id``) of the workspace's requests with this tag, newest
        first, or None where :meth:`tag_filter` is all there is."""

    def save_tags(self, where: str, *args: Any) -> Op[None]:
        """Keep the tags of the requests ``where`` selects where :meth:`tag_source` reads."""

    def metadata_filter(self, row: str, key: str, value: str | None) -> str:
        """SQL matching request ``row`` whose logged metadata has string ``key`` (equal to
        ``value``), read from the row: for requests :meth:`catch_up` has not reached."""

    def copy_metadata_sql(self, where: str) -> str:
        """An INSERT copying the string metadata values of the requests ``where`` selects
        into ``request_metadata`` (values already there, from track.metadata, win)."""

    def text_pattern(self, text: str) -> str:
        """The parameter for :meth:`text_filter` that finds ``text``."""

    def text_phrase(self, text: str) -> str | None:
        """The parameter for :meth:`text_source` that finds ``text``; None when the index
        cannot (SQLite's trigrams: under three characters)."""

    def text_filter(self, placeholder: str) -> str:
        """SQL matching a request ``r`` whose conversation holds the parameter at
        ``placeholder`` (made by :meth:`text_pattern`), ignoring case. Where
        :meth:`text_source` exists this reads each row's text: slow but always right."""

    def text_source(self, workspace: str, phrase: str, pattern: str) -> str | None:
        """A FROM item ``s`` (column ``s.id``) of the workspace's requests whose conversation
        holds the text (the parameters at ``phrase`` and ``pattern``), from an index that
        finds them without reading rows; None where :meth:`text_filter` is that fast."""

    def text_window(self, phrase: str, pattern: str, low: str, high: str) -> str:
        """SQL selecting ``id`` of the requests with ids from ``low`` to ``high`` whose
        conversation holds the text (a slice of :meth:`text_source`)."""

    def catch_up(self, limit: int, *, lag: int = 0) -> Op[bool]:
        """Bring up to ``limit`` requests into indexes kept after ingestion, if more than
        ``lag`` wait for them; whether more wait."""

    def index_hint(self, index: str) -> str:
        """After ``FROM requests r``: walk ``index`` (SQLite's INDEXED BY; PostgreSQL plans)."""

    def plan_each_query(self) -> Op[None]:
        """Before filtered reads: plan each statement for its own parameters."""

    def lock_schema(self) -> Op[None]:
        """Before reading the schema version: wait for any other process migrating."""
