"""What ``promptrun serve`` says at start about the keys its database holds.

A key given to ``--api-key`` once stays in the database: restarting with other keys does not
take it away. So the server says, each start, how many keys each workspace has, which came
from ``--api-key`` this time, and, as a warning, which came from it at an earlier start and
still work, with the command that revokes them. A revoked key given again stays revoked.
"""

from __future__ import annotations

import time
from collections import defaultdict

from promptrun.server.auth import KeyReport
from promptrun.server.store.base import ApiKey

__all__ = ["describe_keys"]


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def _label(key: ApiKey) -> str:
    hint = f" {key.hint}" if key.hint else ""
    return f"key {key.id}{hint} ({key.name!r}, {key.role}, workspace {key.workspace_name!r})"


def describe_keys(
    report: KeyReport, db: str, source: str = "--api-key"
) -> tuple[list[str], list[str]]:
    """``(lines to say, warnings)`` about the keys in ``report``; ``db`` as ``--db`` takes it,
    ``source`` where the keys given at this start came from."""
    lines: list[str] = []
    warnings: list[str] = []
    by_workspace: dict[str, list[ApiKey]] = defaultdict(list)
    for key in report.keys:
        by_workspace[key.workspace_name].append(key)
    for name in sorted(by_workspace):
        keys = by_workspace[name]
        active = [k for k in keys if k.revoked_at is None]
        admins = sum(k.role == "admin" for k in active)
        revoked = len(keys) - len(active)
        lines.append(
            f"keys: workspace {name!r}: {len(active)} active ({admins} admin, "
            f"{len(active) - admins} member)" + (f", {revoked} revoked" if revoked else "")
        )
    given = {key.id for key in report.given}
    for key in report.given:
        if key.revoked_at is None:
            lines.append(f"keys: {source} gave {_label(key)}")
        else:
            warnings.append(
                f"keys: {source} gave {_label(key)}, which was REVOKED on "
                f"{_when(key.revoked_at)}: it stays refused. Drop it from the command line; "
                f"make a new key with: promptrun keys create NAME --db {db}"
            )
    earlier = [
        k
        for k in report.keys
        if k.source == "api-key" and k.revoked_at is None and k.id not in given
    ]
    if earlier:
        warnings.append(
            f"keys: {len(earlier)} key(s) given to --api-key at an earlier start, not now, "
            "STILL WORK:"
        )
        warnings.extend(f"keys:   {_label(k)}, last used {_when(k.last_used_at)}" for k in earlier)
        warnings.append(f"keys: revoke any that should not: promptrun keys revoke ID --db {db}")
    return lines, warnings
