"""The example prompt templates shipped inside promptrun: what ``promptrun quickstart`` and
``promptrun templates push --examples`` publish.

``greet`` runs on OpenAI, ``haiku`` on Anthropic (a jinja2 template) and ``summarize`` on
Gemini; each carries the ``prod`` release label. The files are publish bodies, as
``templates.publish()`` takes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["TEMPLATES", "template_bodies", "template_files"]

TEMPLATES = Path(__file__).parent / "templates"


def template_files() -> list[Path]:
    """The example templates' files, by name."""
    return sorted(TEMPLATES.glob("*.json"))


def template_bodies() -> list[dict[str, Any]]:
    """The example templates as publish bodies, by name."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in template_files()]
