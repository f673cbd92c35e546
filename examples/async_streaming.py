"""Async streaming: print a reply as it arrives, then its request id.

Each item carries the provider's own chunk (``raw_response``) and a ``prompt_blueprint`` whose
last message holds everything received so far; the final item carries ``request_id``.
"""

from __future__ import annotations

import asyncio

from promptrun import AsyncPromptLayer


async def main() -> None:
    async with AsyncPromptLayer() as pl:
        stream = await pl.run(
            "greet", input_variables={"name": "Ada", "topic": "engines"}, stream=True
        )
        text = ""
        async for item in stream:
            if item["request_id"] is not None:
                print(f"\nrequest id: {item['request_id']}")
                break
            message = item["prompt_blueprint"]["prompt_template"]["messages"][-1]
            full = "".join(p.get("text", "") for p in message["content"])
            print(full[len(text) :], end="", flush=True)
            text = full
        await pl.flush(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
