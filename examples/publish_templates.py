"""Publish the example templates shipped inside promptrun (promptrun/examples/templates/).

PROMPTLAYER_BASE_URL=http://127.0.0.1:8765 PROMPTLAYER_API_KEY=... python examples/publish_templates.py

(`promptrun quickstart` does the same from the shell, and runs one of them.)
"""

from __future__ import annotations

import asyncio

from promptrun import AsyncPromptLayer
from promptrun.examples import template_bodies


async def main() -> None:
    async with AsyncPromptLayer() as pl:
        for body in template_bodies():
            stored = await pl.templates.publish(body)
            print(f"published {stored['prompt_name']!r} version {stored['version_number']}")


if __name__ == "__main__":
    asyncio.run(main())
