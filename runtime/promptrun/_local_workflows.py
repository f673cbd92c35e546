"""``run_workflow(..., execution="local")``: a workflow run in this process, no server in the loop.

The same engine as the server's (:mod:`promptrun.workflows.engine`) runs inside the caller's
task, so cancelling the caller cancels the workflow; its nodes run concurrently in the
engine's task group. Prompt nodes go through the client's run pipeline, exactly like
``run()``: the template cache, the provider clients with this process's keys, and the log
shipper, each record carrying ``workflow_version_execution_id`` (a local id,
``local_<hex>``), ``workflow_node_name`` and ``workflow_name`` in its metadata. Tool nodes call
the Python callable registered under their name (``tools={"name": fn}``) and else their URL,
through a session of their own that carries no PromptLayer key. Code nodes run in the same
kernel sandbox as on the server (:mod:`promptrun.workflows._code_sandbox`): a code node fetched
from a shared registry never sees this process's keys or files. Where this machine cannot make
the sandbox, a workflow with code nodes is refused before it starts unless the caller passed
``allow_unsandboxed_code=True``.

The definition is the one given (``definition=``), else the published one fetched with
``GET /workflows/{name_or_id}`` (promptrun's server returns it; the hosted API may not).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from promptrun._errors import PromptLayerError, PromptLayerValidationError
from promptrun._http import segment
from promptrun.pipeline import LogOptions, PromptRef, import_provider_sdks
from promptrun.workflows._code_sandbox import local_sandbox
from promptrun.workflows.definition import (
    CodeConfig,
    PromptTemplateConfig,
    ToolConfig,
    WorkflowSpec,
    parse_definition,
)
from promptrun.workflows.engine import WorkflowInputError, WorkflowRun, resolve_variables
from promptrun.workflows.nodes import NodeContext, NodeError

if TYPE_CHECKING:
    import aiohttp

    from promptrun._runtime import Runtime

__all__ = ["run_local_workflow"]

logger = logging.getLogger("promptlayer")


class _LocalServices:
    """What nodes need from the client: its run pipeline, the caller's tools."""

    def __init__(
        self,
        rt: Runtime,
        tools: Mapping[str, Callable[..., Any]],
        *,
        allow_unsandboxed_code: bool = False,
    ) -> None:
        self._runtime = rt
        self._tools = tools
        self._allow_unsandboxed_code = allow_unsandboxed_code
        self._session: aiohttp.ClientSession | None = None

    async def warm_up(self, spec: WorkflowSpec) -> None:
        if spec.has(PromptTemplateConfig):
            await import_provider_sdks()

    async def run_prompt(
        self, ctx: NodeContext, config: PromptTemplateConfig
    ) -> tuple[dict[str, Any], Any]:
        pipeline = self._runtime.pipeline
        ref = PromptRef(config.prompt_name, config.version, config.label)
        variables = dict(ctx.inputs)
        template = await pipeline.template(ref, variables)
        prepared = await pipeline.render(ref, template, variables, config.model_parameter_overrides)
        options = LogOptions(metadata={**ctx.metadata, "workflow_node_name": ctx.node.name})
        result = await pipeline.run(prepared, options)
        messages = result["prompt_blueprint"]["prompt_template"]["messages"]
        return copy.deepcopy(messages[-1]), result["request_id"]

    async def call_tool(self, ctx: NodeContext, config: ToolConfig) -> Any:
        from promptrun.workflows.nodes.tool import call_callable_tool, call_http_tool

        if config.name is not None and config.name in self._tools:
            return await call_callable_tool(self._tools[config.name], config, ctx.inputs)
        if config.url is None:
            known = ", ".join(sorted(self._tools)) or "none"
            raise NodeError(
                f"tool {config.name!r} is not among the tools given (tools={{...}}: {known}) "
                "and has no url",
                None,
            )
        if self._session is None:
            from promptrun.workflows._tool_http import open_tool_session

            self._session = open_tool_session()  # not the runtime's: no API key on it
        return await call_http_tool(self._session, config, ctx.inputs)

    async def run_code(self, ctx: NodeContext, config: CodeConfig) -> Any:
        return await local_sandbox().run(
            config.code,
            ctx.inputs,
            timeout=config.timeout,
            allow_unsandboxed=self._allow_unsandboxed_code,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _published(
    rt: Runtime, ref: int | str, version: int | None, label: str | None
) -> tuple[str, WorkflowSpec]:
    """The published definition (``GET /workflows/{ref}``) and the workflow's name."""
    params = {}
    if version is not None:
        params["version"] = str(version)
    if label is not None:
        params["label"] = label
    answer = await rt.transport.call(
        "GET",
        f"/workflows/{segment(str(ref))}",
        params=params,
        context=f"fetching workflow {ref!r}",
    )
    workflow = answer.get("workflow") if isinstance(answer, dict) else None
    found = workflow.get("definition") if isinstance(workflow, dict) else None
    if found is None:
        raise PromptLayerValidationError(
            f"run_workflow(): the server did not return workflow {ref!r}'s definition "
            "(only promptrun's server does); pass definition= for local execution"
        )
    assert isinstance(workflow, dict)
    return str(workflow.get("name") or ref), parse_definition(found)


async def run_local_workflow(
    rt: Runtime,
    ref: int | str | None,
    variables: dict[str, Any],
    *,
    metadata: dict[str, str],
    label: str | None,
    version: int | None,
    tools: Mapping[str, Callable[..., Any]],
    definition: Any,
    allow_unsandboxed_code: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run a workflow in ``rt``'s client; returns every node's result."""
    if definition is not None:
        name = str(ref) if ref is not None else "local"
        spec = parse_definition(definition)
    else:
        assert ref is not None
        name, spec = await _published(rt, ref, version, label)
    try:
        values, _ = resolve_variables(spec, variables)
    except WorkflowInputError as exc:
        raise PromptLayerValidationError(f"run_workflow(): workflow {name!r}: {exc}") from None
    if spec.has(CodeConfig):
        await _check_code_sandbox(name, allow_unsandboxed_code)
    services = _LocalServices(rt, tools, allow_unsandboxed_code=allow_unsandboxed_code)
    run = WorkflowRun(spec, values, services)
    if rt.tracing is not None:
        run.observe = rt.tracing.node  # a span per node
    run.metadata.update(
        {str(k): str(v) for k, v in metadata.items()}
        | {"workflow_version_execution_id": run.execution_id, "workflow_name": name}
    )
    try:
        # The caller's timeout surrounds this; a definition's own "timeout" ends the run
        # with its unfinished nodes failed, as on the server.
        await run.execute()
    finally:
        await services.aclose()
    return run.results()


async def _check_code_sandbox(name: str, allowed: bool) -> None:
    """Refuse a workflow with code nodes up front when they cannot be sandboxed here."""
    sandbox = local_sandbox()
    status = await sandbox.status()
    if status.sandboxed:
        return
    if not allowed:
        raise PromptLayerError(
            f"run_workflow(): workflow {name!r} has code nodes, and {sandbox.refusal(status)}"
        )
    logger.warning(
        "run_workflow(): workflow %r runs its code nodes WITHOUT a sandbox "
        "(allow_unsandboxed_code=True): %s",
        name,
        status.detail,
    )
