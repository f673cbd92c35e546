"""A server workflow execution's spans, in the trace of the client that started it.

A client with tracing on sends the W3C ``traceparent`` header (its ``Workflow {name}`` span)
on ``POST /workflows/{id}/run``. The server is itself the trace backend, so it records the
execution's spans straight into its own spans store, in the caller's workspace, under that
trace and parent (no exporter, no OTLP round trip):

- ``Workflow execution {name}`` (kind SERVER): from the execution's start to its end, with
  the workflow's name, version and execution id, and ERROR when it failed;
- ``Workflow node {name}``, its child, for each node that started: its type, status and times,
  ERROR with the node's error when it failed; a prompt node's span has the GenAI attributes of
  its provider call (``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.usage.*``,
  ``gen_ai.response.finish_reasons``, ...) and ``promptrun.request_id``, and the request it
  logged names the span (``span_id``), so the trace page links to it and back.

Without a ``traceparent`` (the PromptLayer SDK sends none), with a malformed one, or with one
whose caller did not sample its trace, nothing is recorded: a server whose callers do not
trace stores no traces of its own. ``tracestate`` is not kept (the store keeps no trace
state). The spans are written when the execution ends, before its result is published; a
process that dies mid-execution records none.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from promptrun._version import __version__
from promptrun.server.store.base import SpanRow
from promptrun.tracing._genai import request_attributes, response_attributes

if TYPE_CHECKING:
    from promptrun.pipeline import CallPlan
    from promptrun.server.store.base import Store, WorkflowVersion
    from promptrun.wire.ingest import TrackRecord
    from promptrun.workflows.engine import NodeResult, WorkflowRun

__all__ = ["SERVICE_NAME", "ExecutionTrace", "TraceParent", "parse_traceparent"]

log = logging.getLogger("promptrun.server")

SERVICE_NAME = "promptrun-server"
_SCOPE = "promptrun.server.workflows"
_RESOURCE = msgspec.json.encode({"service.name": SERVICE_NAME, "service.version": __version__})
# version-traceid-parentid-flags, lowercase hex; later versions may add fields after a "-".
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_MAX_MESSAGE = 1024


@dataclass(frozen=True, slots=True)
class TraceParent:
    """The caller's span, from its ``traceparent``: where the execution's span goes."""

    trace_id: str
    span_id: str


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The caller's span; None when the header is absent, malformed (as W3C Trace Context
    says, a receiver ignores it then), or says the caller did not sample its trace."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16 or not int(flags, 16) & 1:
        return None
    return TraceParent(trace_id, span_id)


def _new_span_id() -> str:
    while True:
        span_id = secrets.token_hex(8)
        if span_id != "0" * 16:
            return span_id


def _ns(seconds: float | None, default: int) -> int:
    return default if seconds is None else int(seconds * 1_000_000_000)


class ExecutionTrace:
    """One traced execution: its span ids (known before its nodes run, so a prompt node's
    request can name its span) and what its prompt nodes called."""

    def __init__(self, parent: TraceParent) -> None:
        self.parent = parent
        self.span_id = _new_span_id()
        self.start_ns = time.time_ns()
        self._nodes: dict[str, str] = {}
        self._calls: dict[str, dict[str, Any]] = {}

    def node_span_id(self, node: str) -> str:
        span_id = self._nodes.get(node)
        if span_id is None:
            span_id = self._nodes[node] = _new_span_id()
        return span_id

    def prompt_called(self, node: str, plan: CallPlan, record: TrackRecord | None) -> None:
        """A prompt node's provider call: the GenAI attributes of its plan and its record."""
        attributes = request_attributes(plan, streamed=False)
        if record is not None:
            response = record.body.get("request_response")
            attributes.update(response_attributes(plan.provider, response))
        self._calls[node] = attributes

    def rows(
        self,
        run: WorkflowRun,
        version: WorkflowVersion,
        execution_id: int,
        status: str,
        error: str | None,
    ) -> list[SpanRow]:
        """The execution's span and its nodes' spans, as stored."""
        end_ns = max(time.time_ns(), self.start_ns)
        failed = [r for r in run.nodes.values() if str(r.status) == "FAILED"]
        message = None
        if status == "FAILED":
            message = error or (failed[0].error_message if failed else None) or "failed"
        rows = [
            self._row(
                self.span_id,
                self.parent.span_id,
                f"Workflow execution {version.name}",
                "server",
                self.start_ns,
                end_ns,
                message,
                {
                    "node_type": "WORKFLOW",
                    "promptrun.workflow.name": version.name,
                    "promptrun.workflow.version": version.number,
                    "promptrun.workflow.execution_id": str(execution_id),
                    "promptrun.workflow.status": status,
                },
            )
        ]
        for result in run.nodes.values():
            if result.started_at is not None:
                rows.append(self._node_row(result, end_ns))
        return rows

    def _node_row(self, result: NodeResult, end_ns: int) -> SpanRow:
        attributes: dict[str, Any] = {
            "promptrun.workflow.node.name": result.name,
            "node_type": result.type,
            "promptrun.workflow.node.status": str(result.status),
            **self._calls.get(result.name, {}),
        }
        if isinstance(result.request_id, int):
            attributes["promptrun.request_id"] = str(result.request_id)
        start_ns = _ns(result.started_at, self.start_ns)
        return self._row(
            self.node_span_id(result.name),
            self.span_id,
            f"Workflow node {result.name}",
            "internal",
            start_ns,
            max(_ns(result.finished_at, end_ns), start_ns),
            (result.error_message or "failed") if str(result.status) == "FAILED" else None,
            attributes,
        )

    def _row(
        self,
        span_id: str,
        parent_span_id: str,
        name: str,
        kind: str,
        start_ns: int,
        end_ns: int,
        error: str | None,
        attributes: dict[str, Any],
    ) -> SpanRow:
        return SpanRow(
            trace_id=self.parent.trace_id,
            span_id=span_id,
            parent_span_id=parent_span_id,
            name=name,
            kind=kind,
            service_name=SERVICE_NAME,
            start_ns=start_ns,
            end_ns=end_ns,
            status_code="UNSET" if error is None else "ERROR",
            status_message=None if error is None else error[:_MAX_MESSAGE],
            attributes=msgspec.json.encode(attributes).decode(),
            events="[]",
            links="[]",
            resource=_RESOURCE.decode(),
            scope_name=_SCOPE,
            scope_version=__version__,
        )

    async def store(
        self,
        store: Store,
        workspace: int,
        run: WorkflowRun,
        version: WorkflowVersion,
        execution_id: int,
        status: str,
        error: str | None,
    ) -> None:
        """Write the spans; a failure is logged, never the execution's."""
        rows = self.rows(run, version, execution_id, status, error)
        try:
            await store.insert_spans(workspace, rows)
        except Exception:
            log.exception(
                "storing the %d trace spans of workflow execution %s failed (trace %s)",
                len(rows),
                execution_id,
                self.parent.trace_id,
            )
