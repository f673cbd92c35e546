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
  (``any_of``, ``array``); ``floor()`` (``floor_int``);
- the request log: PostgreSQL keeps a request's body and blueprint in ``request_payloads``,
  its conversation text in ``search_text`` under a trigram index, its tags as JSONB, and the
  filter menus' values in ``request_facets``; SQLite keeps all in ``requests`` and scans
  (``insert_requests``, ``requests_with_payload``, ``tag_filter``,
  ``text_filter``, ``text_pattern``, ``request_facets``, ``save_facets``, ``plan_each_query``);
- migrations: the ``schema_version`` table each has, and PostgreSQL's lock that makes
  processes starting together take turns (``lock_schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

from promptrun.server.store.base import RequestRow
from promptrun.server.store.queries._sql import Op

__all__ = ["Dialect", "Facet"]

Facet = tuple[int, str, str]  # (workspace, kind, value) for the dashboard's filter menus


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

    def tag_filter(self, placeholder: str) -> str:
        """SQL matching requests tagged with the parameter at ``placeholder``."""

    def text_filter(self, placeholder: str) -> str:
        """SQL matching requests whose conversation holds the parameter at ``placeholder``
        (made by :meth:`text_pattern`), ignoring case."""

    def text_pattern(self, text: str) -> str:
        """The parameter for :meth:`text_filter` that finds ``text``."""

    def plan_each_query(self) -> Op[None]:
        """Before filtered reads: plan each statement for its own parameters."""

    def request_facets(self, workspace: int, limit: int) -> Op[dict[str, list[str]]]: ...

    def save_facets(self, facets: Iterable[Facet]) -> Op[None]:
        """Remember filter-menu values of what was just stored (where kept apart)."""

    def lock_schema(self) -> Op[None]:
        """Before reading the schema version: wait for any other process migrating."""
