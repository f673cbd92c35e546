"""Workflow executions on the server: run in the background, stored, pushed when done.

:class:`WorkflowRuns` lives as long as the app. It owns a task group for the executions, the
provider clients their prompt nodes call, and an HTTP session (with no credentials) for tool
nodes. A prompt node runs through the server's
:class:`~promptrun.server._prompt_runs.PromptRunner`, the run pipeline with the server's ends
(as the dashboard's playground does): the template comes from this server's registry, the
provider is called with **the server's own environment** (never a client's key, with the
sandbox fallback described there), and the request is stored like any logged request, with
metadata ``workflow_version_execution_id``, ``workflow_node_name`` and ``workflow_name``
linking it to the execution.

When an execution ends (however it ends: done, timed out, cancelled, server stopping) its
node results are stored and ``SET_WORKFLOW_COMPLETE`` is published on the run's channel.
While it runs, this process holds a lease on it (``_leases.py``): if the process dies, another
one (or this one restarted) marks it failed and publishes that instead. Cancelling works from
any process on the database: the request reaches the one running it through the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from promptrun import blueprint as bp
from promptrun._errors import PromptLayerValidationError
from promptrun.pipeline import (
    LogOptions,
    PromptRef,
    ProviderClients,
    encode_record,
    import_provider_sdks,
    open_provider_session,
)
from promptrun.server._execution_trace import ExecutionTrace, TraceParent
from promptrun.server._leases import ExecutionLeases
from promptrun.server._prompt_runs import PromptRunner
from promptrun.server.store.base import (
    ExpiredExecution,
    NodeRow,
    NotFoundError,
    WorkflowVersion,
)
from promptrun.server.ws import Hub
from promptrun.wire.workflows import COMPLETE_MESSAGE, WorkflowCompletion
from promptrun.workflows._code_sandbox import CodeNodeSettings
from promptrun.workflows._destinations import DestinationRefused, ToolPolicy
from promptrun.workflows._tool_http import open_tool_session
from promptrun.workflows.definition import (
    CodeConfig,
    PromptTemplateConfig,
    ToolConfig,
    WorkflowSpec,
)
from promptrun.workflows.engine import NodeResult, WorkflowRun, final_output
from promptrun.workflows.nodes import NodeContext, NodeError

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver

    from promptrun.server.store.base import Store

__all__ = [
    "CANCEL_CHANNEL",
    "RunRequest",
    "WorkflowRuns",
    "WorkflowSettings",
    "completion_payload",
]

log = logging.getLogger("promptrun.server")

# How one process asks the others to cancel an execution (not a channel clients can use).
CANCEL_CHANNEL = "promptrun:cancel"


@dataclass(slots=True)
class WorkflowSettings:
    """Tunables; tests change them on ``app[WORKFLOWS].settings`` before the app starts."""

    default_timeout: float = 3600.0
    push_limit: int = 64 * 1024
    provider_concurrency: int = 100
    spec_cache: int = 256
    # What tool nodes may call (see promptrun.workflows._destinations): origins, or "*" for any
    # public address; a keyed client must not make the server fetch internal addresses for it.
    # tool_resolver answers the DNS questions of tool calls (None: the system's getaddrinfo).
    tool_urls: tuple[str, ...] = ()
    tool_resolver: AbstractResolver | None = None
    # Code nodes (see promptrun.workflows._code_sandbox): sandbox, slots, timeouts.
    code_nodes: CodeNodeSettings = field(default_factory=CodeNodeSettings)
    # What rendering one prompt node's template may take (it runs in a render thread).
    render_budget: bp.RenderBudget = bp.DEFAULT_BUDGET
    # Seconds an execution's lease lasts (renewed every third of it): how soon another
    # process, or this one restarted, marks it failed after its process died.
    lease_seconds: float = 30.0
    # Prompt nodes and the playground call providers through the native transports, on a
    # pooled session of their own (off: through the provider SDKs; `serve
    # --no-native-transport`), as a client's run() does.
    native_transport: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    workspace: int
    version: WorkflowVersion
    spec: WorkflowSpec
    variables: dict[str, Any]
    metadata: dict[str, str]
    return_all_outputs: bool
    channel: str | None
    origin: str | None
    # The caller's span (its W3C traceparent): the execution's spans go under it.
    trace: TraceParent | None = None


def completion_payload(
    execution_id: int, results: dict[str, dict[str, Any]], return_all_outputs: bool, limit: int
) -> dict[str, Any]:
    """The publication's ``data``: what the peer SDK reads, its inner JSON as a string."""
    if return_all_outputs:
        output: Any = results
    else:
        found, value = final_output(results)
        output = value if found else results  # the whole dict lets clients say what failed
    inner = encode_record(
        WorkflowCompletion(
            workflow_version_execution_id=execution_id, result_code="OK", final_output=output
        )
    )
    if len(inner) > limit:
        inner = encode_record(
            WorkflowCompletion(
                workflow_version_execution_id=execution_id, result_code="EXCEEDS_SIZE_LIMIT"
            )
        )
    return {"message_name": COMPLETE_MESSAGE, "data": inner.decode()}


def _node_row(result: NodeResult) -> NodeRow:
    value = None if result.value is None else encode_record(result.value).decode()
    return NodeRow(
        name=result.name,
        type=result.type,
        status=str(result.status),
        value=value,
        error_message=result.error_message,
        raw_error_message=result.raw_error_message,
        is_output_node=result.is_output_node,
        started_at=result.started_at,
        finished_at=result.finished_at,
        request_id=result.request_id if isinstance(result.request_id, int) else None,
    )


class _Services:
    """What one execution's nodes need from the server."""

    def __init__(
        self, runs: WorkflowRuns, request: RunRequest, trace: ExecutionTrace | None
    ) -> None:
        self._runs = runs
        self._request = request
        self._trace = trace

    async def warm_up(self, spec: WorkflowSpec) -> None:
        if spec.has(PromptTemplateConfig):
            await import_provider_sdks()

    async def run_prompt(
        self, ctx: NodeContext, config: PromptTemplateConfig
    ) -> tuple[dict[str, Any], Any]:
        ref = PromptRef(config.prompt_name, config.version, config.label)
        prompts = self._runs.prompts
        try:
            call = await prompts.prepare(
                self._request.workspace, ref, ctx.inputs, origin=self._request.origin,
                parameter_overrides=config.model_parameter_overrides,
            )  # fmt: skip
        except NotFoundError as exc:
            raise NodeError(exc.message, exc.message) from None
        except bp.RenderBudgetError as exc:
            raise NodeError(exc.message, exc.message) from None
        except PromptLayerValidationError as exc:
            raise NodeError(exc.message, None) from None
        options = LogOptions(metadata={**ctx.metadata, "workflow_node_name": ctx.node.name})
        trace = self._trace
        if trace is None:
            return await prompts.call(call, options)
        call.sink.span_id = trace.node_span_id(ctx.node.name)  # the request names its span
        try:
            return await prompts.call(call, options)
        finally:
            trace.prompt_called(ctx.node.name, call.prepared.plan, call.sink.record)

    async def call_tool(self, ctx: NodeContext, config: ToolConfig) -> Any:
        from promptrun.workflows.nodes.tool import call_http_tool

        if config.url is None:
            raise NodeError(
                f"tool {config.name!r} has no url: the server calls HTTP tools only "
                "(Python callables work in local execution, tools={...})",
                None,
            )
        try:
            self._runs.tool_policy.check_url(config.url)
        except DestinationRefused as exc:  # its message names the URL
            raise NodeError(str(exc), None) from None
        return await call_http_tool(await self._runs.http(), config, ctx.inputs)

    async def run_code(self, ctx: NodeContext, config: CodeConfig) -> Any:
        return await self._runs.code.run(
            config.code, ctx.inputs, timeout=config.timeout, owner=self._request.workspace
        )


class WorkflowRuns:
    """The server's workflow executions: start, cancel, finish, publish."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        settings: WorkflowSettings | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings or WorkflowSettings()
        self._tg: TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._stop: anyio.Event | None = None
        self.providers = ProviderClients(self.settings.provider_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._provider_session: aiohttp.ClientSession | None = None
        self._scopes: dict[tuple[int, int], anyio.CancelScope] = {}
        self._reasons: dict[tuple[int, int], str] = {}
        self._specs: OrderedDict[int, WorkflowSpec] = OrderedDict()
        self.code = self.settings.code_nodes.sandbox()
        self.tool_policy = ToolPolicy(self.settings.tool_urls)
        self.leases = self._new_leases()
        hub.on(CANCEL_CHANNEL, self._on_cancel)
        # The dashboard's playground runs prompts the same way (app[PROMPTS]).
        self.prompts = PromptRunner(store, self.providers, self.settings.render_budget)

    # -- lifetime (an aiohttp cleanup_ctx) ------------------------------------------------
    def _new_leases(self) -> ExecutionLeases:
        return ExecutionLeases(
            self.store, seconds=self.settings.lease_seconds, publish=self._publish_failure
        )

    async def start(self) -> None:
        self.code = self.settings.code_nodes.sandbox()  # the settings as they are now
        self.tool_policy = ToolPolicy(self.settings.tool_urls)
        native = None
        if self.settings.native_transport:
            # Provider calls go where the operator's environment (or the sandbox) says, never
            # to a caller's address: no tool policy. No cookie jar: runs of every workspace
            # share the session. No default headers: the transports send the provider's.
            self._provider_session = open_provider_session(cookies=False)
            native = self._native_session
        self.providers = self.prompts.providers = ProviderClients(
            self.settings.provider_concurrency, session=native
        )
        self.leases = self._new_leases()
        self.prompts.budget = self.settings.render_budget
        self._ready = asyncio.Event()
        self._stop = anyio.Event()
        self._task = asyncio.get_running_loop().create_task(self._main(), name="workflow-runs")
        await self._ready.wait()

    async def _main(self) -> None:
        assert self._ready is not None
        assert self._stop is not None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                # With no relay, one process serves the database (SQLite).
                keep = partial(self.leases.run, single_process=self.hub.relay is None)
                tg.start_soon(keep, self._running_ids, self._lease_lost)
                self._ready.set()
                await self._stop.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            self._ready.set()
            await self.providers.aclose()
            with anyio.CancelScope(shield=True):
                for session in (self._session, self._provider_session):
                    if session is not None:
                        await session.close()
                self._provider_session = None

    async def close(self) -> None:
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await asyncio.shield(self._task)

    # -- shared resources ------------------------------------------------------------------
    def _native_session(self) -> aiohttp.ClientSession | None:
        """The native transports' session (None once closed: the SDKs are used then)."""
        return self._provider_session

    async def http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # no default headers (tools get no keys); every address checked against the policy
            self._session = open_tool_session(self.tool_policy, self.settings.tool_resolver)
        return self._session

    def spec_for(self, version: WorkflowVersion) -> WorkflowSpec:
        """The parsed definition of a stored version (parsed once, kept in a small cache)."""
        from promptrun.workflows.definition import parse_definition

        spec = self._specs.get(version.version_id)
        if spec is None:
            spec = parse_definition(version.definition)
            self._specs[version.version_id] = spec
            while len(self._specs) > self.settings.spec_cache:
                self._specs.popitem(last=False)
        return spec

    # -- executions -----------------------------------------------------------------------
    async def start_execution(self, request: RunRequest) -> int:
        """Store the execution and start it in the background; returns its id."""
        if self._tg is None:
            raise RuntimeError("the workflow runner is not running")
        execution_id = await self.store.create_workflow_execution(
            request.workspace,
            request.version,
            input_variables=request.variables,
            metadata=request.metadata,
            return_all_outputs=request.return_all_outputs,
            lease_owner=self.leases.owner,
            lease_expires=self.leases.expires(),
            channel=request.channel,
        )
        scope = anyio.CancelScope()
        self._scopes[(request.workspace, execution_id)] = scope
        self._tg.start_soon(self._execute, request, execution_id, scope)
        return execution_id

    def cancel(
        self, workspace: int, execution_id: int, reason: str = "cancelled on request"
    ) -> bool:
        """Stop an execution this process runs; whether it does."""
        scope = self._scopes.get((workspace, execution_id))
        if scope is None:
            return False
        self._reasons.setdefault((workspace, execution_id), reason)
        scope.cancel()
        return True

    def request_cancel(self, workspace: int, execution_id: int) -> bool:
        """Stop a running execution wherever it runs: here, or (through the relay) in the
        process on the same database that runs it. Whether the request went anywhere."""
        if self.cancel(workspace, execution_id):
            return True
        if self.hub.relay is None:
            return False
        self.hub.publish(workspace, CANCEL_CHANNEL, {"execution": execution_id})
        return True

    def _on_cancel(self, workspace: int, data: dict[str, Any]) -> None:
        execution_id = data.get("execution")
        if isinstance(execution_id, int):
            self.cancel(workspace, execution_id)

    def _running_ids(self) -> set[int]:
        return {execution_id for _, execution_id in self._scopes}

    def _lease_lost(self, execution_id: int) -> None:
        for workspace, running in list(self._scopes):
            if running == execution_id:
                log.warning(
                    "workflow execution %s: another process found its lease expired and "
                    "marked it failed; stopping it here",
                    execution_id,
                )
                self.cancel(workspace, execution_id, "its lease expired")

    def _publish_failure(
        self, execution: ExpiredExecution, results: dict[str, dict[str, Any]]
    ) -> None:
        if execution.channel is not None:
            payload = completion_payload(
                execution.id, results, execution.return_all_outputs, self.settings.push_limit
            )
            self.hub.publish(execution.workspace, execution.channel, payload)

    async def _execute(
        self, request: RunRequest, execution_id: int, scope: anyio.CancelScope
    ) -> None:
        metadata = {
            **{str(k): str(v) for k, v in request.metadata.items()},
            "workflow_version_execution_id": str(execution_id),
            "workflow_name": request.version.name,
            "workflow_version_number": str(request.version.number),
        }
        trace = None if request.trace is None else ExecutionTrace(request.trace)
        run = WorkflowRun(
            request.spec,
            request.variables,
            _Services(self, request, trace),
            execution_id=str(execution_id),
            metadata=metadata,
        )
        timeout = request.spec.timeout or self.settings.default_timeout
        error: str | None = None
        try:
            with scope:
                await run.execute(timeout)
            if scope.cancelled_caught:
                error = self._reasons.get((request.workspace, execution_id), "cancelled")
            elif run.timed_out:
                error = f"timed out after {timeout:g} s"
        except Exception as exc:  # a bug: record it rather than lose the execution
            log.exception("workflow execution %s failed", execution_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._scopes.pop((request.workspace, execution_id), None)
            self._reasons.pop((request.workspace, execution_id), None)
            with anyio.CancelScope(shield=True):
                await self._finish(request, execution_id, run, error, trace)

    async def _finish(
        self,
        request: RunRequest,
        execution_id: int,
        run: WorkflowRun,
        error: str | None,
        trace: ExecutionTrace | None,
    ) -> None:
        if error is None and self._stop is not None and self._stop.is_set():
            error = "the server stopped"
        status = run.status if error is None else "FAILED"
        if trace is not None:  # stored before the result is published
            await trace.store(
                self.store, request.workspace, run, request.version, execution_id, status, error
            )
        stored = True
        try:
            stored = await self.store.finish_workflow_execution(
                request.workspace,
                execution_id,
                status=status,
                nodes=[_node_row(r) for r in run.nodes.values()],
                error_message=error,
            )
        except Exception:
            log.exception("storing workflow execution %s failed", execution_id)
        # Not stored: another process marked it failed (its lease had expired) and pushed that.
        if stored and request.channel is not None:
            payload = completion_payload(
                execution_id, run.results(), request.return_all_outputs, self.settings.push_limit
            )
            self.hub.publish(request.workspace, request.channel, payload)
