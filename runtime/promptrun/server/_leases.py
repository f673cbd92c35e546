"""Leases on workflow executions: an execution whose server process died is marked failed.

The process running an execution holds a lease on it, renewed for all of its executions in
one write every third of the lease. Every process looks, as often, for RUNNING executions
whose lease has expired: their process stopped (killed, crashed, cut off from the database).
It marks each FAILED with a message that says so (once, whichever process gets there first)
and pushes the failure on the execution's websocket channel, so a client waiting for the
result hears it instead of waiting for its timeout; a client polling reads it.

With SQLite one process serves the database, so at start every RUNNING execution belongs to
a process that is gone: they are failed at once. A process that finds its own lease taken
(it was cut off longer than the lease) stops those executions: their result is the failure
already stored.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio

from promptrun.server.store.base import ExpiredExecution, NodeRow, Store

__all__ = ["ExecutionLeases", "failed_nodes"]

log = logging.getLogger("promptrun.server")

# What a failure is published as: (the execution, its node results as the API gives them).
Publish = Callable[[ExpiredExecution, dict[str, dict[str, Any]]], None]


def failed_nodes(definition: dict[str, Any], message: str) -> list[NodeRow]:
    """Every node of a stored definition, FAILED with ``message``."""
    nodes = definition.get("nodes")
    rows: list[NodeRow] = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            continue
        rows.append(
            NodeRow(
                name=node["name"],
                type=str(node.get("type") or "?"),
                status="FAILED",
                value=None,
                error_message=message,
                raw_error_message=None,
                is_output_node=node.get("is_output_node") is True,
                started_at=None,
                finished_at=None,
            )
        )
    return rows


def _results(nodes: list[NodeRow]) -> dict[str, dict[str, Any]]:
    return {
        n.name: {
            "status": n.status,
            "value": None,
            "error_message": n.error_message,
            "raw_error_message": None,
            "is_output_node": n.is_output_node,
        }
        for n in nodes
    }


@contextlib.contextmanager
def _logged() -> Iterator[None]:
    """A failure (the store is away) is logged; the next round tries again."""
    try:
        yield
    except Exception as exc:
        log.warning("cannot renew or check workflow execution leases: %s", exc)


class ExecutionLeases:
    """This process's leases, and the search for executions whose process is gone."""

    def __init__(self, store: Store, *, seconds: float, publish: Publish) -> None:
        self.store = store
        self.seconds = seconds
        self.owner = uuid.uuid4().hex
        self._publish = publish
        self.failed = 0  # executions of gone processes this one marked failed

    def expires(self) -> float:
        """When a lease taken or renewed now ends."""
        return time.time() + self.seconds

    async def run(
        self,
        running: Callable[[], set[int]],
        lost: Callable[[int], None],
        *,
        single_process: bool,
    ) -> None:
        """Renew and look, every third of the lease, until cancelled.

        ``running`` gives the ids of this process's running executions; ``lost`` is told of
        one whose lease another process took.
        """
        if single_process:
            with _logged():
                await self._fail_expired(
                    math.inf, "the server restarted while it was running", running
                )
        while True:
            await anyio.sleep(self.seconds / 3)
            with _logged():
                ours = running()
                if ours:
                    renewed = set(await self.store.renew_leases(self.owner, self.expires()))
                    for execution_id in sorted(ours - renewed):
                        lost(execution_id)
                await self._fail_expired(
                    time.time(),
                    "the server process running it stopped before it finished",
                    running,
                )

    async def _fail_expired(self, before: float, why: str, running: Callable[[], set[int]]) -> None:
        for execution in await self.store.expired_executions(before):
            if execution.lease_owner == self.owner and execution.id in running():
                continue  # running here, its lease late: the renewal decides
            message = f"workflow execution {execution.id} failed: {why}; run it again"
            nodes = failed_nodes(execution.definition, message)
            if await self.store.fail_expired_execution(
                execution, expired_before=before, message=message, nodes=nodes
            ):
                self.failed += 1
                log.warning("%s", message)
                self._publish(execution, _results(nodes))
