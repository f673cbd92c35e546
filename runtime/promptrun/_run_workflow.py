"""``run_workflow``: run a workflow on the server (PromptLayer's protocol) or in this process.

Server execution speaks the protocol the peer SDK speaks, with our own websocket code on the
runtime's aiohttp session: resolve a name to an id (``GET /workflows/{name}``), get a token
for a fresh channel, connect and subscribe (Centrifugo JSON protocol, answering the server's
pings), start the run (``POST /workflows/{id}/run``), and wait for ``SET_WORKFLOW_COMPLETE``
(fetching a result too large to push). If the websocket drops, the result is polled instead,
through up to 30 s of the server being unreachable (a restart).
On a timeout or a cancellation the server is asked to cancel the execution.

Local execution runs the same engine in the client's runtime: see
:mod:`promptrun._local_workflows`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import anyio
import msgspec

from promptrun._errors import (
    PromptLayerAPIConnectionError,
    PromptLayerAPIError,
    PromptLayerAPITimeoutError,
    PromptLayerConflictError,
    PromptLayerError,
    PromptLayerNotFoundError,
    PromptLayerValidationError,
)
from promptrun._http import segment
from promptrun._validate import (
    check_bool,
    check_choice,
    check_dict,
    check_int,
    check_metadata,
    check_positive,
    check_str,
)
from promptrun.wire.workflows import COMPLETE_MESSAGE, WorkflowCompletion

if TYPE_CHECKING:
    import aiohttp

    from promptrun._client import AsyncPromptLayer
    from promptrun._http import ApiTransport

__all__ = ["final_value", "run_workflow"]

logger = logging.getLogger("promptlayer")

_NODE_KEYS = frozenset({"status", "value", "error_message", "raw_error_message", "is_output_node"})
_POLL_INTERVAL = 0.5
_POLL_OUTAGE = 30.0  # seconds a server may stay unreachable while its result is polled
_encode = msgspec.json.encode
_decode = msgspec.json.decode
_decode_completion = msgspec.json.Decoder(WorkflowCompletion).decode


def _is_results(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, dict) and v.keys() >= _NODE_KEYS for v in value.values())
    )


def _dump(results: Any) -> str:
    return _encode(results, enc_hook=repr).decode()


def final_value(results: Any, return_all_outputs: bool) -> Any:
    """What ``run_workflow`` returns for a run's output, as the spec says.

    With ``return_all_outputs`` the node dict as it is. Otherwise, for a node dict: the value of
    the last output node that succeeded; ``PromptLayerNotFoundError`` when there is no output
    node; ``PromptLayerAPIError`` when none of them succeeded. Anything else is the value.
    """
    if return_all_outputs or not _is_results(results):
        return results
    outputs = [(name, r) for name, r in results.items() if r.get("is_output_node")]
    if not outputs:
        raise PromptLayerNotFoundError(
            "Output nodes not found: the workflow has no node with is_output_node true; "
            f"results: {_dump(results)}",
            None,
            results,
        )
    succeeded = [r for _, r in outputs if r.get("status") == "SUCCESS"]
    if not succeeded:
        failures = "; ".join(
            f"{name}: {r.get('status')} ({r.get('error_message')})" for name, r in outputs
        )
        raise PromptLayerAPIError(
            f"None of the output nodes have succeeded: {failures}{_first_causes(results)}",
            None,
            results,
        )
    return succeeded[-1].get("value")


def _first_causes(results: dict[str, Any]) -> str:
    """The failures that started it: non-output nodes that failed on their own (not because
    a node upstream failed), so the message says why, not only that something upstream did."""
    causes = [
        f"{name}: {r.get('error_message')}"
        for name, r in results.items()
        if not r.get("is_output_node")
        and r.get("status") == "FAILED"
        and not str(r.get("error_message") or "").startswith("not run: upstream")
    ]
    return f". It started with {'; '.join(causes)}" if causes else ""


def _check(
    workflow_id_or_name: Any,
    input_variables: Any,
    metadata: Any,
    workflow_label_name: Any,
    workflow_version: Any,
    timeout: Any,
    execution: Any,
    tools: Any,
    definition: Any,
    allow_unsandboxed_code: Any = False,
) -> None:
    where = "run_workflow()"
    check_choice(where, "execution", execution, ("server", "local"))
    ref = workflow_id_or_name
    if ref is None and not (execution == "local" and definition is not None):
        raise PromptLayerValidationError(
            f'{where}: "workflow_id_or_name" must be given (a workflow id or name)'
        )
    if isinstance(ref, bool) or not isinstance(ref, int | str | None):
        raise PromptLayerValidationError(
            f"{where}: workflow_id_or_name must be an int or a str, got "
            f"{type(ref).__name__} {ref!r:.80}"
        )
    check_dict(where, "input_variables", input_variables)
    check_metadata(where, metadata, workflow=True)
    check_str(where, "workflow_label_name", workflow_label_name, optional=True)
    check_int(where, "workflow_version", workflow_version, optional=True)
    check_positive(where, "timeout", timeout, optional=True)
    if execution == "server" and (tools is not None or definition is not None):
        raise PromptLayerValidationError(
            f"{where}: tools= and definition= are for execution='local'; the server runs "
            "the published definition with HTTP tools"
        )
    check_dict(where, "tools", tools)
    if tools is not None and not all(callable(fn) for fn in tools.values()):
        raise PromptLayerValidationError(f"{where}: tools must map names to callables")
    check_bool(where, "allow_unsandboxed_code", allow_unsandboxed_code)


async def run_workflow(
    client: AsyncPromptLayer,
    workflow_id_or_name: int | str | None,
    input_variables: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    workflow_label_name: str | None = None,
    workflow_version: int | None = None,
    return_all_outputs: bool = False,
    timeout: float | None = 3600,
    *,
    execution: Literal["server", "local"] = "server",
    tools: Mapping[str, Callable[..., Any]] | None = None,
    definition: Any = None,
    allow_unsandboxed_code: bool = False,
    on_execution: Callable[[int], object] | None = None,
) -> Any:
    """Run a workflow and return its final output node's value (or every node's result).

    ``execution="server"`` (the default) runs it on the PromptLayer-compatible server, as the
    peer SDK does. ``execution="local"`` runs the same engine here: prompt nodes call the
    providers with this process's keys and are logged like ``run()``, tool nodes may be
    Python callables (``tools={"name": fn}``), and ``definition=`` (the JSON format of
    :mod:`promptrun.workflows`) skips fetching the published one. Local code nodes run in a
    kernel sandbox (bubblewrap); where this machine cannot make one, a workflow with code nodes
    is refused with a ``PromptLayerError`` unless ``allow_unsandboxed_code=True``.

    With ``return_all_outputs=True`` the result is ``{node name: {"status", "value",
    "error_message", "raw_error_message", "is_output_node"}}``. Raises
    ``PromptLayerAPITimeoutError`` after ``timeout`` seconds, ``PromptLayerNotFoundError``
    when the workflow has no output node, ``PromptLayerAPIError`` when no output node
    succeeded. ``on_execution`` is called with the server's execution id as soon as the run
    has one (the CLI shows it, and polls the execution for progress).
    """
    _check(
        workflow_id_or_name, input_variables, metadata, workflow_label_name, workflow_version,
        timeout, execution, tools, definition, allow_unsandboxed_code,
    )  # fmt: skip
    rt = await client._runtime_here()
    what = "a workflow" if workflow_id_or_name is None else f"workflow {workflow_id_or_name!r}"
    try:
        with anyio.fail_after(timeout):
            if execution == "local":
                from promptrun._local_workflows import run_local_workflow

                results = await run_local_workflow(
                    rt,
                    workflow_id_or_name,
                    dict(input_variables or {}),
                    metadata=dict(metadata or {}),
                    label=workflow_label_name,
                    version=workflow_version,
                    tools=dict(tools or {}),
                    definition=definition,
                    allow_unsandboxed_code=allow_unsandboxed_code,
                )
            else:
                # With tracing on, the server records the nodes' spans under our workflow span.
                headers = rt.tracing.trace_headers() if rt.tracing is not None else None
                results = await _ServerRun(rt.transport, on_execution, headers).run(
                    workflow_id_or_name if workflow_id_or_name is not None else "",
                    dict(input_variables or {}),
                    dict(metadata or {}),
                    workflow_label_name,
                    workflow_version,
                    return_all_outputs,
                )
    except TimeoutError:
        raise PromptLayerAPITimeoutError(
            f"Workflow execution timed out after {timeout:g} s ({what}, {execution} execution)"
        ) from None
    return final_value(results, return_all_outputs)


def _ws_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    # Unlike the peer, keep a base path prefix: a server behind a proxy keeps working.
    path = parts.path.rstrip("/") + "/connection/websocket"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class _ServerRun:
    """One run on the server, over the websocket of the runtime's session."""

    def __init__(
        self,
        transport: ApiTransport,
        on_execution: Callable[[int], object] | None = None,
        trace_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._transport = transport
        self._on_execution = on_execution
        self._trace_headers = trace_headers
        self._pushes: list[dict[str, Any]] = []

    async def _call(self, method: str, path: str, context: str, **kwargs: Any) -> Any:
        return await self._transport.call(method, path, context=context, **kwargs)

    async def run(
        self,
        ref: int | str,
        variables: dict[str, Any],
        metadata: dict[str, str],
        label: str | None,
        version: int | None,
        return_all_outputs: bool,
    ) -> Any:
        if isinstance(ref, int):
            workflow_id = ref
        else:
            found = await self._call(
                "GET", f"/workflows/{segment(ref)}", f"resolving workflow {ref!r}"
            )
            workflow_id = found["workflow"]["id"]
        channel = f"workflows:{workflow_id}:run:{uuid.uuid4().hex}"
        token_answer = await self._call(
            "POST",
            "/ws-token-request-library",
            "getting a websocket token",
            params={"capability": channel},
            expect=(201,),
        )
        token = token_answer["token_details"]["token"]
        session = self._transport.session
        if session is None:
            raise PromptLayerAPIConnectionError("run_workflow(): the client is closed")
        import aiohttp

        try:
            ws_cm = session.ws_connect(
                _ws_url(self._transport.base_url), autoping=True, heartbeat=None
            )
            ws = await ws_cm.__aenter__()
        except aiohttp.ClientError as exc:
            raise PromptLayerAPIConnectionError(
                f"run_workflow(): could not open the websocket at {_ws_url(self._transport.base_url)}: "
                f"{exc}"
            ) from exc
        execution_id: int | None = None
        try:
            await self._command(ws, 1, {"connect": {"token": token, "name": "promptrun"}})
            await self._command(ws, 2, {"subscribe": {"channel": channel}})
            started = await self._transport.request(
                "POST",
                f"/workflows/{workflow_id}/run",
                body={
                    "input_variables": variables,
                    "metadata": metadata,
                    "workflow_label_name": label,
                    "workflow_version_number": version,
                    "return_all_outputs": return_all_outputs,
                    "channel_name_suffix": channel.rsplit(":", 1)[1],
                },
                context=f"running workflow {ref!r}",
                expect=(201,),
                headers=self._trace_headers,
            )
            execution_id = int(started["workflow_version_execution_id"])
            if self._on_execution is not None:
                self._on_execution(execution_id)
            if started.get("warning"):
                logger.warning("%s", started["warning"])
            completion = await self._completion(ws, execution_id)
        except BaseException:
            if execution_id is not None:
                await self._cancel(execution_id)
            raise
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await ws_cm.__aexit__(None, None, None)
        if completion is None:  # the websocket dropped: ask for the result instead
            return await self._poll(execution_id, return_all_outputs)
        if completion.result_code == "EXCEEDS_SIZE_LIMIT":
            return await self._results(execution_id, return_all_outputs)
        return completion.final_output

    # -- the Centrifugo conversation -----------------------------------------------------
    async def _messages(self, ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]] | None:
        """The next frame's messages (pings answered); None when the socket closed."""
        import aiohttp

        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):  # fmt: skip
                return None
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            out = []
            for line in str(message.data).split("\n"):
                if not line.strip():
                    continue
                decoded = _decode(line)
                if decoded == {}:
                    await ws.send_str("{}")  # the server's ping: pong
                elif isinstance(decoded, dict):
                    out.append(decoded)
            if out:
                return out

    async def _command(
        self, ws: aiohttp.ClientWebSocketResponse, command_id: int, command: dict[str, Any]
    ) -> dict[str, Any]:
        await ws.send_str(_encode({"id": command_id, **command}).decode())
        while True:
            messages = await self._messages(ws)
            if messages is None:
                code = ws.close_code
                raise PromptLayerAPIConnectionError(
                    f"run_workflow(): the websocket closed (code {code}) while waiting for the "
                    f"{next(iter(command))} reply"
                )
            for message in messages:
                if message.get("id") == command_id:
                    error = message.get("error")
                    if error:
                        raise PromptLayerAPIError(
                            f"run_workflow(): websocket {next(iter(command))} refused: "
                            f"{error.get('message')} (code {error.get('code')})",
                            None,
                            error,
                        )
                    return message
                if "push" in message:
                    self._pushes.append(message["push"])

    async def _completion(
        self, ws: aiohttp.ClientWebSocketResponse, execution_id: int
    ) -> WorkflowCompletion | None:
        while True:
            for push in self._pushes:
                found = _completion_in(push, execution_id)
                if found is not None:
                    return found
            self._pushes.clear()
            messages = await self._messages(ws)
            if messages is None:
                return None
            self._pushes.extend(m["push"] for m in messages if isinstance(m.get("push"), dict))

    # -- REST fallbacks ------------------------------------------------------------------
    async def _results(self, execution_id: int, return_all_outputs: bool) -> Any:
        return await self._call(
            "GET",
            "/workflow-version-execution-results",
            "getting the workflow's results",
            params={
                "workflow_version_execution_id": str(execution_id),
                "return_all_outputs": "true" if return_all_outputs else "false",
            },
        )

    async def _poll(self, execution_id: int, return_all_outputs: bool) -> Any:
        logger.warning("the workflow websocket closed early; polling execution %s", execution_id)
        unreachable_since: float | None = None
        while True:
            try:
                return await self._results(execution_id, return_all_outputs)
            except PromptLayerConflictError:  # still running
                unreachable_since = None
            except PromptLayerAPIConnectionError:
                # The server may be restarting (it closed the websocket on its way down): a
                # restarted server, or another one behind the same address, answers with the
                # result, or with the failure of an execution whose server died.
                now = anyio.current_time()
                unreachable_since = unreachable_since if unreachable_since is not None else now
                if now - unreachable_since > _POLL_OUTAGE:
                    raise
            await anyio.sleep(_POLL_INTERVAL)

    async def _cancel(self, execution_id: int) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            try:
                await self._transport.request(
                    "POST",
                    f"/promptrun/v1/workflow-executions/{execution_id}/cancel",
                    context="cancelling the workflow execution",
                    timeout=2,
                )
            except PromptLayerError as exc:  # a server without the endpoint, or gone
                logger.debug("could not cancel workflow execution %s: %s", execution_id, exc)


def _completion_in(push: dict[str, Any], execution_id: int) -> WorkflowCompletion | None:
    pub = push.get("pub")
    data = pub.get("data") if isinstance(pub, dict) else None
    if not isinstance(data, dict) or data.get("message_name") != COMPLETE_MESSAGE:
        return None
    inner = data.get("data")
    try:
        if isinstance(inner, str | bytes):
            completion = _decode_completion(inner)
        else:
            completion = msgspec.convert(inner, WorkflowCompletion)
    except msgspec.ValidationError:  # not a completion, or another shape: not ours
        return None
    except msgspec.DecodeError:
        return None
    return completion if completion.workflow_version_execution_id == execution_id else None
