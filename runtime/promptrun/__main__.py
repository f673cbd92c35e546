"""``python -m promptrun``: the same as the ``promptrun`` command."""

from __future__ import annotations

from promptrun.cli import main

raise SystemExit(main())
