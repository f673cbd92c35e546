"""The embedded store: one SQLite file in WAL mode, written by one batching thread.

Template versions are cached in memory per workspace and name (a fetch with a warm cache
touches no thread and no disk); a publish drops that template's entries once it committed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from promptrun.server.store import _requests, _templates
from promptrun.server.store._dashboard import SQLiteDashboard
from promptrun.server.store._db import ReadPool, WriterThread
from promptrun.server.store._schema import migrate
from promptrun.server.store._workflows import SQLiteWorkflows
from promptrun.server.store.base import (
    NewVersion,
    Rejected,
    RequestRow,
    StoreConfigError,
    TemplateVersion,
    TrackCall,
)
from promptrun.wire.ingest import IngestResult

__all__ = ["SQLiteStore"]

_CacheKey = tuple[int | None, str | None, tuple[tuple[str, str], ...] | None]


class _VersionCache:
    """Resolved versions by (workspace, name), then by how they were asked for.

    A generation number per template keeps a read that raced a publish from caching what
    it read before the publish.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._size = 0
        self._entries: dict[tuple[int, str], dict[_CacheKey, TemplateVersion]] = {}
        self._generations: dict[tuple[int, str], int] = {}

    def get(self, template: tuple[int, str], key: _CacheKey) -> TemplateVersion | None:
        return self._entries.get(template, {}).get(key)

    def generation(self, template: tuple[int, str]) -> int:
        return self._generations.get(template, 0)

    def put(
        self, template: tuple[int, str], key: _CacheKey, value: TemplateVersion, generation: int
    ) -> None:
        if self.generation(template) != generation:
            return
        if self._size >= self._max:
            self._entries.clear()
            self._size = 0
        entries = self._entries.setdefault(template, {})
        if key not in entries:
            self._size += 1
        entries[key] = value

    def invalidate(self, template: tuple[int, str]) -> None:
        self._generations[template] = self.generation(template) + 1
        self._size -= len(self._entries.pop(template, {}))


def _filters_key(filters: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...] | None:
    if not filters:
        return None
    return tuple(sorted((key, repr(value)) for key, value in filters.items()))


class SQLiteStore:
    """:class:`~promptrun.server.store.base.Store` on a SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        write_batch: int = 512,
        read_threads: int = 2,
        cache_entries: int = 10_000,
    ) -> None:
        self.path = Path(path)
        self._writer = WriterThread(self.path, max_batch=write_batch)
        self._readers = ReadPool(self.path, threads=read_threads)
        self._cache = _VersionCache(cache_entries)
        # The dashboard's reads (filters, charts, prices) on the same connections.
        self.dashboard = SQLiteDashboard(self._readers, self._writer)
        self.workflows = SQLiteWorkflows(self._readers, self._writer)

    async def start(self) -> None:
        """Create or migrate the database and start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Blocking for a moment at start-up is fine: nothing is being served yet.
        self._writer.start(migrate)

    async def close(self) -> None:
        """Commit every queued write, then close the connections."""
        self._writer.close()
        self._readers.close()

    # keys and workspaces

    async def workspace_for_key(self, key_hash: str) -> int | None:
        def read(conn: Any) -> int | None:
            found = conn.execute(
                "SELECT workspace_id FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
            return None if found is None else int(found[0])

        return await self._readers.run(read)

    async def add_keys(self, keys: Sequence[tuple[str, str]]) -> None:
        def write(conn: Any) -> None:
            now = time.time()
            for workspace, key_hash in keys:
                conn.execute(
                    "INSERT OR IGNORE INTO workspaces (name, created_at) VALUES (?, ?)",
                    (workspace, now),
                )
                (workspace_id,) = conn.execute(
                    "SELECT id FROM workspaces WHERE name = ?", (workspace,)
                ).fetchone()
                found = conn.execute(
                    "SELECT w.name FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id "
                    "WHERE k.key_hash = ?",
                    (key_hash,),
                ).fetchone()
                if found is None:
                    conn.execute(
                        "INSERT INTO api_keys (key_hash, workspace_id, created_at) "
                        "VALUES (?, ?, ?)",
                        (key_hash, workspace_id, now),
                    )
                elif found[0] != workspace:
                    raise StoreConfigError(
                        f"an API key given for workspace {workspace!r} already belongs to "
                        f"workspace {found[0]!r} in this database; a key has one workspace"
                    )

        await self._writer.submit(write)

    async def has_keys(self) -> bool:
        return bool(
            await self._readers.run(
                lambda conn: conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys)").fetchone()[0]
            )
        )

    # registry

    async def get_version(
        self,
        workspace: int,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        metadata_filters: Mapping[str, Any] | None = None,
    ) -> TemplateVersion:
        template = (workspace, name)
        key: _CacheKey = (version, label, _filters_key(metadata_filters))
        cached = self._cache.get(template, key)
        if cached is not None:
            return cached
        generation = self._cache.generation(template)
        found = await self._readers.run(
            partial(
                _templates.select_version,
                workspace=workspace,
                name=name,
                version=version,
                label=label,
                metadata_filters=metadata_filters,
            )
        )
        self._cache.put(template, key, found, generation)
        return found

    async def list_templates(
        self, workspace: int, *, page: int, per_page: int, label: str | None
    ) -> tuple[list[TemplateVersion], int]:
        return await self._readers.run(
            partial(
                _templates.list_templates,
                workspace=workspace,
                page=page,
                per_page=per_page,
                label=label,
            )
        )

    async def publish(self, workspace: int, new: NewVersion) -> TemplateVersion:
        try:
            return await self._writer.submit(
                partial(_templates.publish, workspace=workspace, new=new)
            )
        finally:
            # Labels moved and "latest" changed: every cached way of asking is stale.
            self._cache.invalidate((workspace, new.prompt_name))

    # request log

    async def insert_request(self, workspace: int, row: RequestRow) -> int:
        return await self._writer.submit(
            partial(_requests.insert_request, workspace=workspace, row=row)
        )

    async def track(self, workspace: int, call: TrackCall) -> int:
        return await self._writer.submit(
            partial(_requests.apply_track_call, workspace=workspace, call=call)
        )

    async def create_group(self, workspace: int) -> int:
        return await self._writer.submit(partial(_requests.create_group, workspace=workspace))

    async def ingest(
        self, workspace: int, items: Sequence[RequestRow | TrackCall | Rejected]
    ) -> list[IngestResult]:
        return await self._writer.submit(
            partial(_requests.ingest, workspace=workspace, items=items)
        )

    async def stored_ids(self, workspace: int, client_ids: Sequence[str]) -> dict[str, int]:
        return await self._readers.run(
            partial(_requests.stored_ids, workspace=workspace, client_ids=client_ids)
        )

    async def list_requests(
        self, workspace: int, *, limit: int, offset: int, prompt_name: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._readers.run(
            partial(
                _requests.list_requests,
                workspace=workspace,
                limit=limit,
                offset=offset,
                prompt_name=prompt_name,
            )
        )

    async def get_request(self, workspace: int, ref: int | str) -> dict[str, Any]:
        return await self._readers.run(partial(_requests.get_request, workspace=workspace, ref=ref))
