"""WorkflowRunner: a client's local execution of a workflow, with no server in the loop.

The same engine as the server's (:mod:`promptrun.workflows.engine`) runs inside the caller's
task, so cancelling the caller cancels the workflow; its nodes run concurrently in the
engine's task group. Prompt nodes go through the runtime's own machinery, exactly like
``run()``: the template actor (cache and all), the provider workers with this process's keys,
and the log shipper, each record carrying ``workflow_version_execution_id`` (a local id,
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
from urllib.parse import quote

from promptrun import _run
from promptrun._errors import PromptLayerError, PromptLayerValidationError
from promptrun._retry import CALLER_POLICY, call_with_retries
from promptrun.actors.templates import TemplateKey
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

__all__ = ["WorkflowRunner"]

logger = logging.getLogger("promptlayer")


class _LocalServices:
    """What nodes need from the client: its runtime's actors, the caller's tools."""

    def __init__(
        self,
        rt: Runtime,
        tools: Mapping[str, Callable[..., Any]],
        *,
        allow_unsandboxed_code: bool = False,
    ) -> None:
        self._rt = rt
        self._tools = tools
        self._allow_unsandboxed_code = allow_unsandboxed_code
        self._session: aiohttp.ClientSession | None = None

    async def warm_up(self, spec: WorkflowSpec) -> None:
        from promptrun.workflows.nodes.prompt import import_provider_sdks

        if any(isinstance(node.config, PromptTemplateConfig) for node in spec.nodes.values()):
            await import_provider_sdks()

    async def run_prompt(
        self, ctx: NodeContext, config: PromptTemplateConfig
    ) -> tuple[dict[str, Any], Any]:
        rt = self._rt
        key = TemplateKey(config.prompt_name, config.version, config.label)
        variables = dict(ctx.inputs)
        template = await rt.templates.get(key)
        rendered_by_server = _run.needs_server_rendering(template.get("prompt_template", {}))
        if rendered_by_server:
            body = {**key.params(), "input_variables": variables, "api_key": rt.transport.api_key}
            body.pop("skip_input_variable_rendering", None)
            context = f"fetching prompt template {config.prompt_name!r}"

            async def fetch() -> Any:
                return await rt.transport.request(
                    "POST",
                    f"/prompt-templates/{quote(config.prompt_name, safe='')}",
                    body=body,
                    context=context,
                )

            template = await call_with_retries(CALLER_POLICY, context, fetch)
        prepared = _run.prepare(
            config.prompt_name,
            template,
            variables,
            config.model_parameter_overrides,
            rt.config.provider_base_urls,
            rendered_by_server=rendered_by_server,
        )
        worker = await rt.worker(prepared.plan.provider, prepared.base_url)
        log = _run.RunLog(None, {**ctx.metadata, "workflow_node_name": ctx.node.name}, None)
        result = await _run.execute(worker, rt.shipper, prepared, log)
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


class WorkflowRunner:
    """Runs workflows in one client's runtime; ``run()`` returns every node's result."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def definition(
        self, ref: int | str, *, version: int | None, label: str | None
    ) -> tuple[str, WorkflowSpec]:
        """The published definition (``GET /workflows/{ref}``) and the workflow's name."""
        params = {}
        if version is not None:
            params["version"] = str(version)
        if label is not None:
            params["label"] = label
        context = f"fetching workflow {ref!r}"
        transport = self._rt.transport

        async def fetch() -> Any:
            return await transport.request(
                "GET", f"/workflows/{quote(str(ref), safe='')}", params=params, context=context
            )

        answer = await call_with_retries(CALLER_POLICY, context, fetch)
        workflow = answer.get("workflow") if isinstance(answer, dict) else None
        found = workflow.get("definition") if isinstance(workflow, dict) else None
        if found is None:
            raise PromptLayerValidationError(
                f"run_workflow(): the server did not return workflow {ref!r}'s definition "
                "(only promptrun's server does); pass definition= for local execution"
            )
        assert isinstance(workflow, dict)
        return str(workflow.get("name") or ref), parse_definition(found)

    async def run(
        self,
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
        if definition is not None:
            name = str(ref) if ref is not None else "local"
            spec = parse_definition(definition)
        else:
            assert ref is not None
            name, spec = await self.definition(ref, version=version, label=label)
        try:
            values, _ = resolve_variables(spec, variables)
        except WorkflowInputError as exc:
            raise PromptLayerValidationError(f"run_workflow(): workflow {name!r}: {exc}") from None
        if any(isinstance(node.config, CodeConfig) for node in spec.nodes.values()):
            await _check_code_sandbox(name, allow_unsandboxed_code)
        services = _LocalServices(self._rt, tools, allow_unsandboxed_code=allow_unsandboxed_code)
        run = WorkflowRun(spec, values, services)
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
