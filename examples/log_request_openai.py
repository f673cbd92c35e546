"""Fire-and-forget logging around your own OpenAI call (the spec's log_request example).

``log_request`` returns at once; the record ships in the background.
"""

from __future__ import annotations

import asyncio
import time

from openai import AsyncOpenAI

from promptrun import AsyncPromptLayer


async def main() -> None:
    client = AsyncOpenAI()  # OPENAI_API_KEY and OPENAI_BASE_URL from the environment
    messages = [
        {"role": "system", "content": "You are an AI."},
        {"role": "user", "content": "Compose a poem please."},
    ]
    async with AsyncPromptLayer() as pl:
        start = time.time()
        completion = await client.chat.completions.create(model="gpt-4o", messages=messages)
        end = time.time()
        logged = await pl.log_request(
            provider="openai",
            model="gpt-4o",
            input={
                "type": "chat",
                "messages": [
                    {"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
                    for m in messages
                ],
            },
            output={
                "type": "chat",
                "messages": [
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "text", "text": completion.choices[0].message.content or ""}
                        ],
                    }
                ],
            },
            request_start_time=start,
            request_end_time=end,
            input_tokens=completion.usage.prompt_tokens if completion.usage else 0,
            output_tokens=completion.usage.completion_tokens if completion.usage else 0,
            tags=["getting-started"],
        )
        print(f"logged as {logged['id']}")
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
