"""AsyncPromptLayer: the public async client, a thin face over its runtime and run pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from promptrun import _before_fork  # noqa: F401 - registers its hook: fork() waits for imports
from promptrun._boundary import public
from promptrun._config import ClientConfig
from promptrun._errors import (
    TRANSIENT,
    PromptLayerError,
    PromptLayerNotFoundError,
    PromptLayerUnexpectedAnswerError,
    PromptLayerValidationError,
    describe,
)
from promptrun._procs import forked
from promptrun._track import (
    group_body,
    metadata_body,
    prompt_body,
    score_body,
)
from promptrun._types import (
    GetTemplateResult,
    LogRequestResult,
    PublishResult,
    RunResult,
    StreamItem,
    TemplateListItem,
    WorkflowNodeResult,
)
from promptrun._validate import (
    check_dict,
    check_int,
    check_metadata,
    check_str,
    check_str_list,
)
from promptrun._workflow_registry import AsyncWorkflows
from promptrun.tracing import F, start_tracing, traceable

# What runs prompts and ships records (the pipeline, the runtime, msgspec's records) is
# imported when a client first needs it, not by `import promptrun` (tests/test_import_lazy.py).
if TYPE_CHECKING:
    from promptrun._http import Shape
    from promptrun._runtime import Runtime
    from promptrun.pipeline import PromptRef
    from promptrun.tracing._setup import ClientTracing
    from promptrun.wire.tracking import TrackEndpoint

__all__ = ["AsyncPromptLayer"]

# No handler of our own: with logging unconfigured, WARNING and above reach stderr through
# Python's last-resort handler, as from any library; once the application configures logging,
# its handlers decide.
logger = logging.getLogger("promptlayer")
# An inline log the server did not take, for no fault of the record: shipped in the background.
_NOT_TAKEN: tuple[type[PromptLayerError], ...] = (*TRANSIENT, PromptLayerUnexpectedAnswerError)
T = TypeVar("T")

_TEMPLATE_PARAMS = frozenset(
    {
        "version",
        "label",
        "provider",
        "model",
        "input_variables",
        "metadata_filters",
        "model_parameter_overrides",
        "skip_input_variable_rendering",
    }
)


class AsyncPromptLayer:
    """Run registry prompts and log requests, asynchronously.

    ``api_key`` defaults to ``PROMPTLAYER_API_KEY`` and ``base_url`` to ``PROMPTLAYER_BASE_URL``
    (else the hosted API; point it at ``promptrun serve`` to work offline). Use it with
    ``async with`` or call :meth:`aclose` when done; it also starts by itself on first use.
    Logging happens in the background: :meth:`flush` waits for it, and records that cannot be
    shipped wait in an on-disk spool (``spool_dir``) until they can.

    ``cache_ttl_seconds`` caches each template for that long; after it, the next caller waits
    for a fresh fetch, and the cached one is served past its TTL only when the registry fails.
    ``cache_refresh="background"`` serves an expired template at once while one refresh runs,
    for at most ``cache_max_stale_seconds`` past its TTL (default: one TTL).

    A variable the template uses but ``input_variables`` lacks (or sets to None) renders as
    empty text, as in the PromptLayer SDK, with one WARNING per template version on the
    ``promptlayer`` logger; ``strict_variables=True`` raises
    :class:`~promptrun.blueprint.MissingVariablesError` instead.
    """

    def __init__(
        self,
        api_key: str | None = None,
        enable_tracing: bool = False,
        base_url: str | None = None,
        throw_on_error: bool = True,
        cache_ttl_seconds: float = 0,
        tracer_provider: Any = None,
        tracing_providers: Any = None,
        *,
        cache_refresh: Literal["wait", "background"] = "wait",
        cache_max_stale_seconds: float | None = None,
        http_timeout: float | None = None,
        inline_logging: bool = False,
        log_channel_size: int = 10_000,
        spool_dir: str | PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        shutdown_timeout: float = 5.0,
        provider_concurrency: int = 100,
        provider_base_urls: dict[str, str] | None = None,
        strict_variables: bool = False,
        native_transport: bool = True,
    ) -> None:
        self._config = ClientConfig.resolve(
            api_key=api_key,
            base_url=base_url,
            throw_on_error=throw_on_error,
            cache_ttl_seconds=cache_ttl_seconds,
            cache_refresh=cache_refresh,
            cache_max_stale_seconds=cache_max_stale_seconds,
            http_timeout=http_timeout,
            inline_logging=inline_logging,
            log_channel_size=log_channel_size,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            shutdown_timeout=shutdown_timeout,
            provider_concurrency=provider_concurrency,
            provider_base_urls=provider_base_urls,
            strict_variables=strict_variables,
            native_transport=native_transport,
        )
        self._tracing: ClientTracing | None = None
        if enable_tracing:
            self._tracing = start_tracing(self._config, tracer_provider, tracing_providers)
        elif tracer_provider is not None or tracing_providers is not None:
            logger.warning(
                "tracer_provider and tracing_providers are used with enable_tracing=True "
                "only; without it they are ignored"
            )
        self._runtime: Runtime | None = None
        self._starting: asyncio.Future[Runtime] | None = None
        self._closed = False
        self._final_stats: dict[str, int] | None = None  # set when closed
        self.templates = AsyncTemplates(self)
        self.track = AsyncTrack(self)
        self.group = AsyncGroup(self)
        self.workflows = AsyncWorkflows(self)
        # Children this process forks may log through this client and end without shipping
        # (SIGTERM, os._exit): this process's exit ships what they left, even if it never
        # used the client itself.
        from promptrun import _lifetime

        _lifetime.remember(self._config)

    # -- settings, read-only -------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self._config.api_key

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def throw_on_error(self) -> bool:
        return self._config.throw_on_error

    # -- lifecycle -----------------------------------------------------------------------
    async def _runtime_here(self) -> Runtime:
        """This client's runtime in the running loop, started on first use."""
        rt = self._runtime
        if rt is not None and rt.is_usable_here():
            return rt
        if self._closed:
            raise PromptLayerError("this client is closed; create a new one")
        if rt is not None and rt.failure is not None:
            raise PromptLayerError(
                f"this client's runtime stopped after an internal error ({rt.failure!r}); "
                "what was logged waits in the spool for the next client: create a new one"
            ) from rt.failure
        starting = self._starting
        loop = asyncio.get_running_loop()
        if starting is not None and starting.get_loop() is loop:
            return await asyncio.shield(starting)
        # First use, or the loop this client lived in is gone (a second asyncio.run): start a
        # runtime here. The old one shipped or spooled whatever it had when its loop ended.
        starting = self._starting = loop.create_future()
        try:
            from promptrun._runtime import start_runtime

            rt = await start_runtime(self._config, self._tracing)
        except BaseException as exc:
            self._starting = None
            starting.set_exception(exc)
            starting.exception()  # mark retrieved: the caller below gets it
            raise
        if self._was_closed():  # aclose() was called while the runtime was starting
            await rt.aclose()
            self._starting = None
            starting.set_exception(PromptLayerError("this client is closed; create a new one"))
            starting.exception()
            raise PromptLayerError("this client was closed while it was starting")
        self._runtime = rt
        starting.set_result(rt)
        return rt

    def _was_closed(self) -> bool:
        # A method, so type checkers do not carry a narrowing of _closed across an await.
        return self._closed

    async def __aenter__(self) -> AsyncPromptLayer:
        await self._runtime_here()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Ship what was logged (within ``shutdown_timeout``); the rest waits in the spool.

        In a process that forked, what its children logged through this client and left in
        the spool (ended by SIGTERM or ``os._exit`` before shipping it) is shipped too."""
        if self._runtime is None and not self._closed and self._children_left_records():
            await self._runtime_here()  # never used here: its shutdown ships the children's
        self._closed = True
        rt, self._runtime = self._runtime, None
        if rt is None:
            return
        if rt.is_usable_here():
            await rt.aclose()
        elif not rt.finished.is_set():
            # Its loop is gone or is another one: finish it from a thread, without blocking.
            deadline = time.monotonic() + self._config.shutdown_timeout
            await asyncio.to_thread(rt.finish_elsewhere, deadline)
        self._final_stats = rt.shipper.snapshot()
        if self._tracing is not None:  # export the spans too, within the same bound
            await asyncio.to_thread(self._tracing.flush, self._config.shutdown_timeout)

    def _children_left_records(self) -> bool:
        """In a process that forked: segments of its family wait in this client's folder."""
        if not forked():
            return False
        from promptrun.actors._spool import kin_waiting

        return kin_waiting(self._config.spool_dir)

    def __del__(self) -> None:
        # Never closed: ship what it holds (in its loop if that still runs, else from a
        # thread); interpreter exit is covered by promptrun._lifetime.
        rt = getattr(self, "_runtime", None)
        if rt is not None:
            rt.abandon()

    @public
    async def flush(self, timeout: float | None = None) -> bool:
        """Ship everything logged so far, and what waits in the spool.

        Keeps trying, with backoff, until all of it is on the server (True) or ``timeout``
        seconds have passed (False; the rest stays in the spool and keeps being retried in the
        background). Once the server refused a record (``stats()["failed"]``, kept in
        ``refused.jsonl`` in the spool folder) or one was lost (``dropped``), False for good.
        """
        rt = await self._runtime_here()
        started = time.monotonic()
        shipped = await rt.shipper.flush(timeout)
        if self._tracing is None:
            return shipped
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        exported = await asyncio.to_thread(self._tracing.flush, 30.0 if left is None else left)
        return shipped and exported

    def stats(self) -> dict[str, int]:
        """Counters of the background logging: queued, shipped, spooled, replayed, dropped,
        failed, and what is waiting now: pending (of which in_memory). With tracing on, also
        the spans': spans_exported, spans_pending, spans_dropped, spans_failed and
        span_export_failures."""
        rt = self._runtime
        if rt is not None:
            counts = rt.shipper.snapshot()
        elif self._final_stats is not None:
            counts = dict(self._final_stats)
        else:  # never started
            from promptrun.actors.shipper import ShipperStats

            counts = ShipperStats().as_dict()
        if self._tracing is not None:
            counts.update(self._tracing.stats())
        return counts

    def invalidate(self, name: str | None = None) -> None:
        """Drop cached templates: one name's, or all of them."""
        if self._runtime is not None:
            self._runtime.templates.invalidate(name)

    def traceable(
        self, attributes: dict[str, Any] | None = None, name: str | None = None
    ) -> Callable[[F], F]:
        """A decorator: with ``enable_tracing=True`` each call of the function is a span
        (see :mod:`promptrun.tracing._traceable`); with tracing off, the function as it is."""
        return traceable(self._tracing, attributes, name)

    # -- helpers -------------------------------------------------------------------------
    async def _or_warn(self, context: str, default: T, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``; with throw_on_error=False a PromptLayer error is a warning instead."""
        try:
            return await call()
        except PromptLayerValidationError:
            raise
        except PromptLayerError as exc:
            if self._config.throw_on_error:
                raise
            logger.warning("WARNING: %s", describe(context, exc))
            return default

    async def _post(
        self,
        path: str,
        body: dict[str, Any],
        context: str,
        expect: tuple[int, ...] = (200,),
        shape: Shape | None = None,
        client_id: str | None = None,
    ) -> Any:
        """POST ``body``; ``client_id`` names the record or call it carries (a promptrun server
        stores it once however often it is sent; the hosted API ignores the header)."""
        from promptrun.pipeline import encode_record
        from promptrun.wire.tracking import IDEMPOTENCY_KEY

        rt = await self._runtime_here()
        headers = None if client_id is None else {IDEMPOTENCY_KEY: client_id}
        return await rt.transport.call(
            "POST",
            path,
            body=encode_record(body),
            context=context,
            expect=expect,
            shape=shape,
            headers=headers,
        )

    # -- run -----------------------------------------------------------------------------
    @overload
    async def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        stream: Literal[False] = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> RunResult: ...
    @overload
    async def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        *,
        stream: Literal[True],
        provider: str | None = None,
        model: str | None = None,
    ) -> AsyncIterator[StreamItem]: ...
    @overload
    async def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        stream: bool = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> RunResult | AsyncIterator[StreamItem]: ...
    @public
    async def run(
        self,
        prompt_name: str,
        prompt_version: int | None = None,
        prompt_release_label: str | None = None,
        input_variables: dict[str, Any] | None = None,
        model_parameter_overrides: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        group_id: int | None = None,
        stream: bool = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> Any:
        """Fetch a registry prompt, run it on its provider, log it; return the result.

        Returns ``{"request_id", "raw_response", "prompt_blueprint"}`` (a :class:`RunResult`);
        with ``stream=True`` an async iterator of such items (:class:`StreamItem`),
        ``request_id`` set on the last one. ``raw_response`` is the provider SDK's own object.
        The log ships in the background. With ``throw_on_error=False`` a PromptLayer-side
        failure other than a missing template returns ``None`` (with a warning).
        """
        where = "run()"
        check_str(where, "prompt_name", prompt_name)
        check_int(where, "prompt_version", prompt_version, optional=True)
        check_str(where, "prompt_release_label", prompt_release_label, optional=True)
        check_dict(where, "input_variables", input_variables)
        check_dict(where, "model_parameter_overrides", model_parameter_overrides)
        check_str_list(where, "tags", tags)
        check_metadata(where, metadata)
        check_int(where, "group_id", group_id, optional=True)
        check_str(where, "provider", provider, optional=True)
        check_str(where, "model", model, optional=True)
        from promptrun.pipeline import PROVIDERS, PromptRef

        if provider is not None and provider not in PROVIDERS:
            raise PromptLayerValidationError(
                f"run(): provider {provider!r} is not supported; use one of "
                f"{', '.join(PROVIDERS)} (any OpenAI-compatible server works as 'openai')"
            )
        ref = PromptRef(prompt_name, prompt_version, prompt_release_label, provider, model)
        run = functools.partial(
            self._run, ref, input_variables, model_parameter_overrides, tags, metadata, group_id,
            stream,
        )  # fmt: skip
        try:
            if self._tracing is None:
                return await run()
            return await self._tracing.run(
                prompt_name, prompt_version, prompt_release_label, metadata, run
            )
        except UnicodeEncodeError:  # text that cannot be sent: say which, else re-raise
            from promptrun.actors._surrogates import surrogate_field, unsendable

            if (bad := surrogate_field(input_variables, "input_variables")) is None:
                raise
            raise unsendable("run()", bad) from None

    async def _run(
        self,
        ref: PromptRef,
        input_variables: dict[str, Any] | None,
        model_parameter_overrides: dict[str, Any] | None,
        tags: list[str] | None,
        metadata: dict[str, str] | None,
        group_id: int | None,
        stream: bool,
    ) -> Any:
        rt = await self._runtime_here()
        pipeline = rt.pipeline
        variables = dict(input_variables) if input_variables else {}
        try:
            template = await pipeline.template(ref, variables)
        except (PromptLayerNotFoundError, PromptLayerValidationError):
            raise  # even with throw_on_error=False, as the peer does
        except PromptLayerError as exc:
            if self._config.throw_on_error:
                raise
            logger.warning("WARNING: %s", describe("run()", exc))
            return None
        prepared = await pipeline.render(ref, template, variables, model_parameter_overrides)
        from promptrun.pipeline import LogOptions

        options = LogOptions(
            list(tags) if tags else None, dict(metadata) if metadata else None, group_id
        )
        if stream:
            return await pipeline.stream(prepared, options)
        return await pipeline.run(prepared, options)

    @overload
    async def run_workflow(
        self,
        workflow_id_or_name: int | str | None = None,
        input_variables: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        workflow_label_name: str | None = None,
        workflow_version: int | None = None,
        *,
        return_all_outputs: Literal[True],
        workflow_name: str | None = None,
        timeout: float | None = 3600,
        execution: Literal["server", "local"] = "server",
        tools: Mapping[str, Callable[..., Any]] | None = None,
        definition: Any = None,
        allow_unsandboxed_code: bool = False,
    ) -> dict[str, WorkflowNodeResult]: ...
    @overload
    async def run_workflow(
        self,
        workflow_id_or_name: int | str | None = None,
        input_variables: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        workflow_label_name: str | None = None,
        workflow_version: int | None = None,
        return_all_outputs: bool = False,
        workflow_name: str | None = None,
        timeout: float | None = 3600,
        *,
        execution: Literal["server", "local"] = "server",
        tools: Mapping[str, Callable[..., Any]] | None = None,
        definition: Any = None,
        allow_unsandboxed_code: bool = False,
    ) -> Any: ...
    @public
    async def run_workflow(
        self,
        workflow_id_or_name: int | str | None = None,
        input_variables: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        workflow_label_name: str | None = None,
        workflow_version: int | None = None,
        return_all_outputs: bool = False,
        workflow_name: str | None = None,
        timeout: float | None = 3600,
        *,
        execution: Literal["server", "local"] = "server",
        tools: Mapping[str, Callable[..., Any]] | None = None,
        definition: Any = None,
        allow_unsandboxed_code: bool = False,
    ) -> Any:
        """Run a workflow; returns the final output node's value.

        With ``return_all_outputs=True``, a dict keyed by node name of each node's
        ``status``, ``value``, ``error_message``, ``raw_error_message`` and ``is_output_node``.
        ``execution="local"`` runs it in this process (prompt nodes use your provider keys;
        ``tools`` maps tool nodes to Python callables; ``definition`` skips fetching it). The
        format is documented in :mod:`promptrun.workflows`. ``workflow_name`` is the PromptLayer
        SDK's deprecated spelling of ``workflow_id_or_name``. Local code nodes run in a kernel
        sandbox (bubblewrap); where none can be made here they are refused with a
        ``PromptLayerError`` unless ``allow_unsandboxed_code=True``.
        """
        from promptrun._run_workflow import run_workflow

        ref = workflow_id_or_name if workflow_id_or_name is not None else workflow_name
        if self._tracing is None:
            span: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        else:
            span = self._tracing.workflow(str(ref if ref is not None else "local"), execution)
        with span:
            return await run_workflow(
                self,
                ref,
                input_variables,
                metadata,
                workflow_label_name,
                workflow_version,
                return_all_outputs,
                timeout,
                execution=execution,
                tools=tools,
                definition=definition,
                allow_unsandboxed_code=allow_unsandboxed_code,
            )

    # -- log_request ---------------------------------------------------------------------
    @public
    async def log_request(
        self,
        provider: str,
        model: str,
        input: dict[str, Any],
        output: dict[str, Any],
        request_start_time: float,
        request_end_time: float,
        parameters: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, str] | None = None,
        prompt_name: str | None = None,
        prompt_version_number: int | None = None,
        prompt_input_variables: dict[str, Any] | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        price: float = 0.0,
        function_name: str = "",
        score: int = 0,
        prompt_id: int | None = None,
        score_name: str | None = None,
        api_type: str | None = None,
        status: str = "SUCCESS",
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> LogRequestResult:
        """Log a request you made yourself; returns at once.

        Returns ``{"id", "request_id", "prompt_version"}`` like the PromptLayer API, with the
        client-made id (``req_...``, accepted by ``track.*``) and the blueprint the server
        stores. The record ships in the background (see :meth:`flush`); with
        ``inline_logging=True`` this waits for the server and returns its answer, with the
        server's integer id, as the peer SDK does.
        """
        from promptrun._logreq import build_log_record, logged

        record = build_log_record(
            provider, model, input, output, request_start_time, request_end_time, parameters,
            tags, metadata, prompt_name, prompt_version_number, prompt_input_variables,
            input_tokens, output_tokens, price, function_name, score, prompt_id, score_name,
            api_type, status, error_type, error_message,
        )  # fmt: skip
        if self._tracing is not None:  # inside a traced function: the request names its span
            self._tracing.link(record.body)
        rt = await self._runtime_here()
        if self._config.inline_logging:
            from promptrun.actors._delivery import LOGGED_SHAPE

            data = rt.shipper.encode_or_count(record, caller="log_request()")

            async def inline() -> Any:
                try:
                    return await self._post(
                        "/log-request",
                        record.body,
                        "logging the request",
                        expect=(200, 201),
                        shape=LOGGED_SHAPE,
                        client_id=record.client_request_id,
                    )
                except _NOT_TAKEN as exc:
                    # Nothing says the record is wrong: never lose it (as run() does).
                    logger.warning("logging inline failed (%s); shipping it in the background", exc)
                    if data is not None:
                        rt.shipper.submit_encoded(data)
                    return logged(record)

            answer = await self._or_warn("logging the request", None, inline)
            return cast(LogRequestResult, answer)
        rt.shipper.submit(record, caller="log_request()")
        return cast(LogRequestResult, logged(record))

    # -- what the managers share ---------------------------------------------------------
    async def _track(self, endpoint: TrackEndpoint, body: dict[str, Any]) -> bool:
        from promptrun.pipeline import new_request_id

        rt = await self._runtime_here()
        call_id = new_request_id()  # a retried call applies once
        if self._config.inline_logging:
            from promptrun.wire.tracking import TRACK_PATHS

            path = TRACK_PATHS[endpoint]
            target = body["request_id"]
            if isinstance(target, str):
                mapped = rt.shipper.server_id(target)
                body = {**body, "request_id": mapped if mapped is not None else target}
            return (
                await self._or_warn(
                    f"track.{endpoint}",
                    False,
                    lambda: self._post(
                        path,
                        {**body, "api_key": self._config.api_key},
                        f"track.{endpoint}",
                        client_id=call_id,
                    ),
                )
                is not False
            )
        from promptrun.wire.ingest import TrackCallRecord

        rt.shipper.submit(TrackCallRecord(client_request_id=call_id, endpoint=endpoint, body=body))
        return True


class AsyncTemplates:
    """``client.templates``: the prompt registry."""

    def __init__(self, client: AsyncPromptLayer) -> None:
        self._client = client

    @public
    async def get(
        self, prompt_name: str, params: dict[str, Any] | None = None
    ) -> GetTemplateResult:
        """One template version, as the registry stores it (rendered with
        ``params["input_variables"]`` when given). ``None`` with throw_on_error=False when it
        cannot be fetched."""
        check_str("templates.get()", "prompt_name", prompt_name)
        check_dict("templates.get()", "params", params)
        params = dict(params or {})
        unknown = set(params) - _TEMPLATE_PARAMS
        if unknown:
            raise PromptLayerValidationError(
                f"templates.get(): unknown params {sorted(unknown)}; use {sorted(_TEMPLATE_PARAMS)}"
            )
        found = await self._client._or_warn(
            f"fetching prompt template {prompt_name!r}",
            None,
            lambda: self._get(prompt_name, params),
        )
        return cast(GetTemplateResult, found)

    async def _get(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        from promptrun.pipeline import PromptRef, Template, needs_server_rendering

        rt = await self._client._runtime_here()
        ref = PromptRef(
            name,
            params.get("version"),
            params.get("label"),
            params.get("provider"),
            params.get("model"),
        )
        variables = params.get("input_variables")
        if params.get("metadata_filters"):
            extra = {
                k: v
                for k, v in params.items()
                if k in ("input_variables", "metadata_filters", "model_parameter_overrides")
            }
            return await rt.registry.fetch(ref, extra)
        template = await rt.templates.get(ref)
        if variables and not needs_server_rendering(template.get("prompt_template", {})):
            prepared = await rt.pipeline.render(
                ref, Template(template), dict(variables), params.get("model_parameter_overrides")
            )
            template = {
                **template,
                "llm_kwargs": prepared.plan.llm_kwargs,
                "prompt_template": prepared.rendered_template,
            }
        elif variables:
            return await rt.registry.fetch(ref, {"input_variables": variables})
        return copy.deepcopy(template)

    @public
    async def all(
        self, page: int = 1, per_page: int = 30, label: str | None = None
    ) -> list[TemplateListItem]:
        """One page of the registry's templates (``[]`` on failure with throw_on_error=False)."""
        check_int("templates.all()", "page", page, lo=1)
        check_int("templates.all()", "per_page", per_page, lo=1)
        check_str("templates.all()", "label", label, optional=True)

        async def call() -> Any:
            rt = await self._client._runtime_here()
            params = {"page": str(page), "per_page": str(per_page)}
            if label:
                params["label"] = label
            answer = await rt.transport.call(
                "GET", "/prompt-templates", params=params, context="listing prompt templates"
            )
            return answer.get("items", []) if isinstance(answer, dict) else []

        return cast(
            list[TemplateListItem],
            await self._client._or_warn("listing prompt templates", [], call),
        )

    @public
    async def publish(self, body: dict[str, Any]) -> PublishResult:
        """Publish a new version: ``{"prompt_name", "prompt_template", "commit_message"?,
        "metadata"?, "tags"?, "release_labels"?}``. Drops that name from the cache."""
        check_dict("templates.publish()", "body", body, optional=False)
        check_str("templates.publish()", 'body["prompt_name"]', body.get("prompt_name"))
        check_dict(
            "templates.publish()",
            'body["prompt_template"]',
            body.get("prompt_template"),
            optional=False,
        )
        name = body["prompt_name"]
        template_part = {k: body[k] for k in ("prompt_name", "tags", "folder_id") if k in body}
        version_part = {
            k: body[k]
            for k in ("prompt_template", "commit_message", "metadata", "parent_version_id")
            if k in body
        }
        wire = {
            "prompt_template": template_part,
            "prompt_version": version_part,
            "release_labels": body.get("release_labels"),
        }

        async def call() -> Any:
            answer = await self._client._post(
                "/rest/prompt-templates",
                wire,
                f"publishing prompt template {name!r}",
                expect=(200, 201),
            )
            self._client.invalidate(name)
            return answer

        published = await self._client._or_warn(f"publishing prompt template {name!r}", None, call)
        return cast(PublishResult, published)

    def invalidate(self, name: str | None = None) -> None:
        """Drop cached templates: one name's, or all of them."""
        self._client.invalidate(name)


class AsyncTrack:
    """``client.track``: attach metadata, scores, prompts and groups to a logged request.

    Calls are queued behind the record they name and return True at once (with
    ``inline_logging=True`` they wait for the server, as the peer SDK does).
    """

    def __init__(self, client: AsyncPromptLayer) -> None:
        self._client = client

    @public
    async def metadata(self, request_id: int | str, metadata: dict[str, str]) -> bool:
        return await self._client._track("metadata", metadata_body(request_id, metadata))

    @public
    async def score(self, request_id: int | str, score: int, score_name: str | None = None) -> bool:
        return await self._client._track("score", score_body(request_id, score, score_name))

    @public
    async def prompt(
        self,
        request_id: int | str,
        prompt_name: str,
        prompt_input_variables: dict[str, Any],
        version: int | None = None,
        label: str | None = None,
    ) -> bool:
        body = prompt_body(request_id, prompt_name, prompt_input_variables, version, label)
        return await self._client._track("prompt", body)

    @public
    async def group(self, request_id: int | str, group_id: int) -> bool:
        return await self._client._track("group", group_body(request_id, group_id))


class AsyncGroup:
    """``client.group``: request groups."""

    def __init__(self, client: AsyncPromptLayer) -> None:
        self._client = client

    @public
    async def create(self) -> int:
        """Create a group; returns its id (``False`` on failure with throw_on_error=False)."""

        async def call() -> Any:
            answer = await self._client._post(
                "/create-group", {"api_key": self._client.api_key}, "creating a group"
            )
            return answer.get("id") if isinstance(answer, dict) else None

        return cast(int, await self._client._or_warn("creating a group", False, call))
