"""Resolved template versions kept in memory, for a store whose process sees every write.

A fetch with a warm cache touches no thread and no disk; a publish drops that template's
entries once it committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptrun.server.store.base import TemplateVersion

__all__ = ["CacheKey", "VersionCache", "cache_key"]

CacheKey = tuple[int | None, str | None, tuple[tuple[str, str], ...] | None]


def cache_key(
    version: int | None, label: str | None, filters: Mapping[str, Any] | None
) -> CacheKey:
    """How a fetch asked for a version (the filters' values by their repr)."""
    if not filters:
        return (version, label, None)
    return (version, label, tuple(sorted((key, repr(value)) for key, value in filters.items())))


class VersionCache:
    """Resolved versions by (workspace, name), then by how they were asked for.

    A generation number per template keeps a read that raced a publish from caching what
    it read before the publish.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._size = 0
        self._entries: dict[tuple[int, str], dict[CacheKey, TemplateVersion]] = {}
        self._generations: dict[tuple[int, str], int] = {}

    def get(self, template: tuple[int, str], key: CacheKey) -> TemplateVersion | None:
        return self._entries.get(template, {}).get(key)

    def generation(self, template: tuple[int, str]) -> int:
        return self._generations.get(template, 0)

    def put(
        self, template: tuple[int, str], key: CacheKey, value: TemplateVersion, generation: int
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
