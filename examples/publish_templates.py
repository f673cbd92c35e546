"""Publish the example templates in examples/templates/ to the registry.

PROMPTLAYER_BASE_URL=http://127.0.0.1:8765 PROMPTLAYER_API_KEY=... python examples/publish_templates.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from promptrun import AsyncPromptLayer

TEMPLATES = Path(__file__).parent / "templates"


async def main() -> None:
    async with AsyncPromptLayer() as pl:
        for path in sorted(TEMPLATES.glob("*.json")):
            body = json.loads(path.read_text())
            stored = await pl.templates.publish(body)
            print(f"published {stored['prompt_name']!r} version {stored['version_number']}")


if __name__ == "__main__":
    asyncio.run(main())
