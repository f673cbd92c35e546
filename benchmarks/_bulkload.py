"""Millions of logged requests, made up and bulk-loaded (PostgreSQL with COPY; SQLite too).

Rows look like what the server stores for a chat call: providers, models, prompts and their
versions, tags, a few per cent errors, start times spread over 30 days, a user in metadata
(one of a thousand), a score on one in ten, a logged price on three in ten (the rest priced
from tokens), and a blueprint whose messages use a vocabulary with a Zipf-like spread, so a
search word can be common or rare.

A load is what a bulk import would do: the rows go in with the log's secondary indexes
dropped; the store fills the rollups, tag and metadata rows (and, on SQLite, the text search
index) from them as it does for a database logged before they existed (PostgreSQL: in its
start-up transaction, ``rollup_backfill``; SQLite: its catch-up, here run in one go); then
the indexes are built again. Each step is timed.
"""

from __future__ import annotations

import itertools
import random
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["SEARCH_WORDS", "load_postgres", "load_sqlite", "rows"]

_ROW_COLUMNS = (
    "client_request_id", "kind", "provider", "model", "function_name", "api_type",
    "prompt_id", "prompt_version", "prompt_name", "input_variables", "tags", "metadata",
    "group_id", "start_time", "end_time", "input_tokens", "output_tokens", "price", "status",
    "error_type", "error_message", "score", "body", "blueprint",
)  # fmt: skip
COLUMNS = ("id", "workspace_id", *_ROW_COLUMNS, "created_at")
PG_COLUMNS = (*COLUMNS, "search_text")  # PostgreSQL's indexed copy of the conversation text
_PAYLOAD = (COLUMNS.index("body"), COLUMNS.index("blueprint"))
# PostgreSQL keeps body and blueprint in request_payloads.
_LOG = tuple(i for i, c in enumerate(PG_COLUMNS) if i not in _PAYLOAD)
MODELS = {
    "openai": ("gpt-4o-mini", "gpt-4o", "o3-mini"),
    "anthropic": ("claude-3-5-haiku", "claude-sonnet-4"),
    "google": ("gemini-2.0-flash",),
}
TAGS = ("prod", "beta", "eval", "batch", "vip", "canary")
PROMPTS = tuple(f"prompt-{n}" for n in range(20))
# Words of random letters drawn with English letter frequencies: their trigrams are as varied
# as real text's, so a trigram index meets what it would in production. (Words built from a
# few syllables share a few hundred trigrams, each in most rows: every word looks common to a
# trigram index, which no real log does.)
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_LETTER_WEIGHTS = (
    12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8,
    2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07,
)  # fmt: skip


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(_LETTERS, weights=_LETTER_WEIGHTS, k=rng.randint(3, 9))))
    return sorted(sorted(words), key=lambda w: (rng.random(), w))  # sorted first: set order varies


def _word_from(rank: int) -> str:
    """The first word from ``rank`` on that is long enough not to hide inside other words."""
    return next(w for w in VOCABULARY[rank:] if len(w) >= 6)


_RNG = random.Random(7)
VOCABULARY = _vocabulary(5000, _RNG)
# Zipf-like: the word of rank r is drawn with weight 1/r.
_CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))
# Search words by how often they appear: in nearly every row (95%), in 1.5% of rows, in
# under 0.1%, in none.
SEARCH_WORDS = {
    "common": VOCABULARY[0],
    "uncommon": _word_from(200),
    "rare": _word_from(4900),
    "absent": "qqxqqz",
}


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = rng.choices(VOCABULARY, cum_weights=_CUMULATIVE, k=rng.randint(low, high))
    return " ".join(words)


def _message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def rows(
    count: int, workspace: int, *, days: float = 30.0, seed: int = 1
) -> Iterator[tuple[Any, ...]]:
    """``count`` rows in ``PG_COLUMNS`` order, ids 1..count, oldest first."""
    rng = random.Random(seed)
    encode = msgspec.json.encode
    now = time.time()
    start = now - days * 86400
    step = days * 86400 / max(1, count)
    providers = list(MODELS)
    for n in range(1, count + 1):
        provider = rng.choices(providers, weights=(6, 3, 1))[0]
        model = rng.choice(MODELS[provider])
        prompt = rng.choice(PROMPTS) if rng.random() < 0.8 else None
        failed = rng.random() < 0.02
        began = start + n * step
        ended = began + rng.uniform(0.2, 3.0)
        tokens_in, tokens_out = rng.randint(20, 2000), rng.randint(5, 800)
        price = round(tokens_in * 1e-6 + tokens_out * 4e-6, 6) if rng.random() < 0.3 else 0.0
        score = rng.randint(0, 100) if rng.random() < 0.1 else None
        question, answer = _sentence(rng, 8, 24), _sentence(rng, 6, 18)
        blueprint = encode(
            {
                "prompt_template": {
                    "type": "chat",
                    "messages": [_message("user", question), _message("assistant", answer)],
                },
                "metadata": {"model": {"provider": provider, "name": model}},
            }
        ).decode()
        yield (
            n, workspace, f"bulk-{n}", "track", provider, model, f"{provider}.chat",
            None, None, rng.randint(1, 3) if prompt else None, prompt,
            '{"topic": "engines"}' if prompt else None,
            encode(rng.sample(TAGS, rng.randint(0, 2))).decode(), f'{{"user": "u{n % 1000}"}}',
            None, began, ended, tokens_in, tokens_out, price,
            "ERROR" if failed else "SUCCESS", "ProviderError" if failed else None,
            "upstream timeout" if failed else None, score,
            '{"kwargs": {"model": "' + model + '"}}', blueprint, ended, f"{question}\n{answer}",
        )  # fmt: skip


def _chunks(source: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(itertools.islice(source, size)):
        yield chunk


# Secondary indexes of the log and the tables beside it: dropped for a load, built after.
_INDEX = re.compile(r"CREATE INDEX ((?:requests|request_tags|request_metadata)_\w+)\s+ON [^;]+;")


def _indexes(dialect: str) -> dict[str, str]:
    """Name -> CREATE INDEX statement, as the migrations leave them (the last one wins)."""
    from promptrun.server.store.queries.migrate import migrations

    schema = "\n".join(statement for script in migrations(dialect) for statement in script)
    return {m.group(1): m.group(0) for m in _INDEX.finditer(schema)}


async def _start_store(kind: str, target: str) -> float:
    """Open the store once (its start-up fills the rollups from the loaded rows); seconds."""
    from promptrun.server.store import postgres_store, sqlite_store

    store = postgres_store(target) if kind == "postgres" else sqlite_store(Path(target))
    began = time.perf_counter()
    await store.start()
    took = time.perf_counter() - began
    await store.close()
    return took


async def load_postgres(url: str, count: int, workspace: int) -> dict[str, float]:
    """COPY ``count`` rows into the (migrated, empty) request log; seconds per step."""
    import asyncpg

    ddl = _indexes("postgres")
    timings: dict[str, float] = {}
    began = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for name in ddl:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
        for chunk in _chunks(rows(count, workspace), 50_000):
            await conn.copy_records_to_table(
                "requests",
                records=[tuple(r[i] for i in _LOG) for r in chunk],
                columns=[PG_COLUMNS[i] for i in _LOG],
            )
            await conn.copy_records_to_table(
                "request_payloads",
                records=[(r[0], r[_PAYLOAD[0]], r[_PAYLOAD[1]]) for r in chunk],
                columns=("request_id", "body", "blueprint"),
            )
        await conn.execute("SELECT setval('requests_id_seq', $1)", count)
        await conn.execute("VACUUM ANALYZE requests")
        await conn.execute("INSERT INTO rollup_backfill VALUES ($1)", count)
        timings["rows"] = time.perf_counter() - began
        timings["rollups"] = await _start_store("postgres", url)
        began = time.perf_counter()
        for statement in ddl.values():
            await conn.execute(statement)
        await conn.execute("VACUUM ANALYZE")
        timings["indexes"] = time.perf_counter() - began
    finally:
        await conn.close()
    return timings


def load_sqlite(path: Path, count: int, workspace: int) -> dict[str, float]:
    """Insert ``count`` rows into a (migrated, empty) SQLite database; seconds per step."""
    import asyncio

    ddl = _indexes("sqlite")
    timings: dict[str, float] = {}
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        for name in ddl:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute("BEGIN")
        marks = ", ".join("?" * len(COLUMNS))
        for chunk in _chunks(rows(count, workspace), 50_000):
            conn.executemany(
                f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({marks})",
                [r[:-1] for r in chunk],
            )
        conn.execute("COMMIT")
        timings["rows"] = time.perf_counter() - began
        began = time.perf_counter()
        asyncio.run(_catch_up_sqlite(path))
        timings["rollups, tags, metadata, search index"] = time.perf_counter() - began
        began = time.perf_counter()
        for statement in ddl.values():
            conn.execute(statement)
        conn.execute("ANALYZE")
        timings["indexes"] = time.perf_counter() - began
    finally:
        conn.close()
    return timings


async def _catch_up_sqlite(path: Path) -> None:
    """What the server does in the background after a migration, in one go."""
    from promptrun.server.store import sqlite_store
    from promptrun.server.store.drivers.sqlite import SQLiteDriver

    store = sqlite_store(path)
    await store.start()
    try:
        assert isinstance(store.driver, SQLiteDriver)
        await store.driver.catch_up(chunk=250_000)
    finally:
        await store.close()
