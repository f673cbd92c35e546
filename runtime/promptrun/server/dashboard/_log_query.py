"""The request log's address: filters, sort and page cursor in, links out.

A cursor is the sort key of the row a page ends at (as stored: a float, or whatever an odd
row holds) and its id, spelled ``<kind><value>~<id>``: ``f1733300000.25~4521``. Every value is
checked: a bad one is a 400 that says which parameter and what it should look like.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from multidict import MultiMapping

from promptrun.server.dashboard._web import DashboardError, whole_number
from promptrun.server.store.base import Cursor, PageRequest, RequestQuery, SortKey

__all__ = ["FIELDS", "SORTS", "LogAddress", "form_time", "parse_address"]

PAGE_SIZE = 50
FIELDS = (
    "q", "prompt", "version", "tag", "provider", "model", "status", "meta_key", "meta_value",
    "since", "until",
)  # fmt: skip
SORTS: tuple[SortKey, ...] = ("time", "latency", "tokens", "cost")
_MAX_CURSOR = 2_000


def form_time(name: str, raw: str) -> float:
    """A datetime-local value (or any ISO 8601 time); without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise DashboardError(400, f"{name} {raw!r} is not a time like 2025-06-01T12:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_cursor(cursor: Cursor) -> str:
    key = cursor.key
    if key is None:
        spelled = "n"
    elif isinstance(key, bool | int):
        spelled = f"i{int(key)}"
    elif isinstance(key, float):
        spelled = f"f{key!r}"
    elif isinstance(key, bytes):
        spelled = f"b{key.hex()}"
    else:
        spelled = f"s{key}"
    return f"{spelled}~{cursor.id}"


def _cursor(name: str, raw: str) -> Cursor:
    spelled, _, request_id = raw.rpartition("~")
    problem = DashboardError(
        400,
        f"{name} {raw[:80]!r} is not a page position from this dashboard's own links "
        "(like f1733300000.5~4521); go back to the first page",
    )
    if not spelled or len(raw) > _MAX_CURSOR or not (request_id.isascii() and request_id.isdigit()):
        raise problem
    kind, value = spelled[0], spelled[1:]
    key: Any
    try:
        if kind == "n" and not value:
            key = None
        elif kind == "i":
            key = int(value)
        elif kind == "f":
            key = float(value)
        elif kind == "b":
            key = bytes.fromhex(value)
        elif kind == "s":
            key = value
        else:
            raise ValueError(kind)
    except ValueError:
        raise problem from None
    if (isinstance(key, int) and not -(2**63) <= key < 2**63) or int(request_id) >= 2**63:
        raise problem
    return Cursor(key, int(request_id))


@dataclass(frozen=True, slots=True)
class LogAddress:
    """What the request list was asked for: filters (as given, and for the store), the sort,
    and the page."""

    given: dict[str, str]
    query: RequestQuery
    page: PageRequest

    @property
    def filtered(self) -> bool:
        return any(self.given.values())

    def link(self, **changes: str | None) -> str:
        """This address's query string with ``changes`` (None drops a parameter); a change
        of filter or sort starts again from the first page."""
        values: dict[str, str] = {k: v for k, v in self.given.items() if v}
        if self.page.sort != "time":
            values["sort"] = self.page.sort
        if not self.page.descending:
            values["order"] = "asc"
        for name, value in changes.items():
            if value is None:
                values.pop(name, None)
            else:
                values[name] = value
        return urlencode(values)

    def sort_link(self, sort: SortKey) -> str:
        """Sorted by ``sort``, largest (newest) first; again on the current sort: reversed."""
        descending = not self.page.descending if sort == self.page.sort else True
        return self.link(sort=None if sort == "time" else sort, order=None if descending else "asc")

    def pages(self, after: Cursor | None, before: Cursor | None) -> dict[str, str | None]:
        """The query strings of the next and the previous page (None where there is none)."""
        return {
            "next": self.link(after=encode_cursor(after)) if after else None,
            "previous": self.link(before=encode_cursor(before)) if before else None,
        }

    def with_page(self, page: PageRequest) -> LogAddress:
        return replace(self, page=page)


def parse_address(raw: MultiMapping[str]) -> LogAddress:
    """The request list's parameters, checked (a 400 names the bad one)."""
    given = {name: raw.get(name, "").strip() for name in FIELDS}
    version = whole_number(given["version"], "version") if given["version"] else None
    if given["meta_value"] and not given["meta_key"]:
        raise DashboardError(400, "a metadata value needs its key: fill in meta_key too")
    query = RequestQuery(
        prompt_name=given["prompt"] or None,
        prompt_version=version,
        tag=given["tag"] or None,
        provider=given["provider"] or None,
        model=given["model"] or None,
        status=given["status"] or None,
        since=form_time("since", given["since"]) if given["since"] else None,
        until=form_time("until", given["until"]) if given["until"] else None,
        text=given["q"] or None,
        meta_key=given["meta_key"] or None,
        meta_value=given["meta_value"] or None,
    )
    sort = raw.get("sort", "time")
    if sort not in SORTS:
        raise DashboardError(400, f"sort must be one of {', '.join(SORTS)}")
    order = raw.get("order", "desc")
    if order not in ("asc", "desc"):
        raise DashboardError(400, "order must be asc or desc")
    after = _cursor("after", raw["after"]) if raw.get("after") else None
    before = _cursor("before", raw["before"]) if raw.get("before") else None
    if after and before:
        raise DashboardError(400, "ask for the page after a row or before it, not both")
    page = PageRequest(
        sort=sort,
        descending=order == "desc",
        after=after,
        before=before,
        limit=PAGE_SIZE,
    )
    return LogAddress(given=given, query=query, page=page)
