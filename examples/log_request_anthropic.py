"""Fire-and-forget logging around your own Anthropic call."""

from __future__ import annotations

import asyncio
import time

from anthropic import AsyncAnthropic

from promptrun import AsyncPromptLayer


async def main() -> None:
    client = AsyncAnthropic()  # ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL from the environment
    question = "What is the capital of France?"
    async with AsyncPromptLayer() as pl:
        start = time.time()
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=[{"role": "user", "content": question}],
        )
        end = time.time()
        answer = "".join(block.text for block in message.content if block.type == "text")
        logged = await pl.log_request(
            provider="anthropic",
            model="claude-sonnet-4-6",
            input={
                "type": "chat",
                "messages": [{"role": "user", "content": [{"type": "text", "text": question}]}],
            },
            output={
                "type": "chat",
                "messages": [{"role": "assistant", "content": [{"type": "text", "text": answer}]}],
            },
            request_start_time=start,
            request_end_time=end,
            parameters={"max_tokens": 256},
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            tags=["getting-started"],
        )
        print(f"logged as {logged['id']}")
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
