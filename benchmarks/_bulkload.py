"""A million logged requests, made up and bulk-loaded (PostgreSQL with COPY; SQLite too).

Rows look like what the server stores for a chat call: providers, models, prompts and their
versions, tags, a few per cent errors, start times spread over 30 days, and a blueprint whose
messages use a vocabulary with a Zipf-like spread, so a search word can be common or rare.
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
            encode(rng.sample(TAGS, rng.randint(0, 2))).decode(), '{"user": "u1"}', None,
            began, ended, tokens_in, tokens_out, round(tokens_in * 1e-6 + tokens_out * 4e-6, 6),
            "ERROR" if failed else "SUCCESS", "ProviderError" if failed else None,
            "upstream timeout" if failed else None, None,
            '{"kwargs": {"model": "' + model + '"}}', blueprint, ended, f"{question}\n{answer}",
        )  # fmt: skip


def _chunks(source: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(itertools.islice(source, size)):
        yield chunk


_INDEX = re.compile(r"CREATE INDEX (requests_\w+) ON [^;]+;")


async def load_postgres(url: str, count: int, workspace: int) -> float:
    """COPY ``count`` rows into the (migrated, empty) ``requests`` table; seconds taken.

    The table's secondary indexes are dropped for the load and built again after it, as one
    would for a bulk import; then facets are filled and the table vacuumed and analysed.
    """
    import asyncpg

    from promptrun.server.store.queries.migrate import migrations

    schema = "\n".join(statement for script in migrations("postgres") for statement in script)
    indexes = _INDEX.findall(schema)
    ddl = {m.group(1): m.group(0) for m in _INDEX.finditer(schema)}
    began = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for name in indexes:
            await conn.execute(f"DROP INDEX {name}")
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
        for name in indexes:
            await conn.execute(ddl[name])
        await conn.execute("SELECT setval('requests_id_seq', $1)", count)
        await conn.execute(
            "INSERT INTO request_facets (workspace_id, kind, value) "
            "SELECT DISTINCT $1::int8, k, v FROM requests, LATERAL (VALUES "
            "('providers', provider), ('models', model), ('statuses', status), "
            "('prompts', prompt_name)) AS f(k, v) WHERE v IS NOT NULL "
            "UNION SELECT $1, 'tags', jsonb_array_elements_text(tags) FROM requests "
            "ON CONFLICT DO NOTHING",
            workspace,
        )
        await conn.execute("VACUUM ANALYZE requests")
    finally:
        await conn.close()
    return time.perf_counter() - began


def load_sqlite(path: Path, count: int, workspace: int) -> float:
    """Insert ``count`` rows into a (migrated, empty) SQLite database; seconds taken."""
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        marks = ", ".join("?" * len(COLUMNS))
        for chunk in _chunks(rows(count, workspace), 50_000):
            conn.executemany(
                f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({marks})",
                [r[:-1] for r in chunk],
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - began
