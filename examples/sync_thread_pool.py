"""One sync client shared by a thread pool: safe, pooled, and one background thread in all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from promptrun import PromptLayer


def main() -> None:
    with PromptLayer(cache_ttl_seconds=60) as pl:

        def greet(name: str) -> str:
            result = pl.run("greet", input_variables={"name": name, "topic": "threads"})
            return str(result["request_id"])

        names = [f"user-{i}" for i in range(32)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(greet, names))
        pl.flush(timeout=10)
        print(f"{len(ids)} runs from 8 threads, logging stats: {pl.stats()}")


if __name__ == "__main__":
    main()
