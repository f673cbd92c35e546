"""One ``run()``: a fetched template becomes a provider call, a result and a log record.

``prepare`` is pure: it renders the cached, unrendered template with the caller's variables
(under the default rendering budget, so a hostile template fails with a RenderBudgetError
naming it instead of hanging the caller) and decides what to call. ``execute`` and ``stream`` do the call through a provider worker and hand
the log record to the shipper without waiting for it.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from promptrun import blueprint
from promptrun._errors import PromptLayerValidationError
from promptrun.actors.providers import (
    CallPlan,
    ProviderKeyError,
    ProviderWorker,
    close_stream,
    split_client_options,
    status_of,
)
from promptrun.actors.shipper import LogShipper
from promptrun.wire.ingest import TrackRecord

__all__ = [
    "PreparedRun",
    "RecordSink",
    "RunLog",
    "debug_call",
    "execute",
    "new_request_id",
    "prepare",
    "stream",
]

logger = logging.getLogger("promptlayer")


_ids = itertools.count(1)
_prefix = ""


def _new_prefix() -> None:
    global _prefix
    # 80 random bits per process (new after fork) and a counter: unique like a uuid4,
    # at a tenth of its cost on the caller's path.
    _prefix = f"req_{secrets.token_hex(10)}"


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """A request id made on the client, so it exists before the log ships."""
    return f"{_prefix}{next(_ids):x}"


@dataclass(frozen=True, slots=True)
class PreparedRun:
    plan: CallPlan
    base_url: str | None
    function_name: str
    model: dict[str, Any]
    input_messages: list[Any]
    template: dict[str, Any]
    variables: dict[str, Any]


def needs_server_rendering(prompt_template: Mapping[str, Any]) -> bool:
    """Placeholders splice whole messages in: only the server can rebuild the kwargs then."""
    messages = prompt_template.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "placeholder" for m in messages
    )


def _template_format(prompt_template: Mapping[str, Any]) -> str:
    messages = prompt_template.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return str(messages[0].get("template_format") or "f-string")
    return str(prompt_template.get("template_format") or "f-string")


def prepare(
    name: str,
    template: dict[str, Any],
    variables: dict[str, Any],
    parameter_overrides: dict[str, Any] | None,
    provider_base_urls: Mapping[str, str],
    *,
    rendered_by_server: bool = False,
) -> PreparedRun:
    """Render ``template`` (the registry's answer) and decide the provider call."""
    llm_kwargs = template.get("llm_kwargs")
    metadata = template.get("metadata") or {}
    model = metadata.get("model") if isinstance(metadata, dict) else None
    prompt_template = template.get("prompt_template")
    where = f"prompt template {name!r} (version {template.get('version')})"
    if not isinstance(llm_kwargs, dict) or not llm_kwargs:
        raise PromptLayerValidationError(f"{where} has no llm_kwargs: publish it with a model")
    if not isinstance(model, dict) or not model.get("provider"):
        raise PromptLayerValidationError(
            f"{where} has no metadata.model.provider: publish it with metadata "
            '{"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}}'
        )
    if not isinstance(prompt_template, dict):
        raise PromptLayerValidationError(f"{where} has no prompt_template")
    provider = str(model["provider"])
    if rendered_by_server:
        rendered = prompt_template
        kwargs = llm_kwargs
    else:
        try:
            rendered = blueprint.render_prompt_template(prompt_template, variables)
            kwargs = blueprint.render_llm_kwargs(
                provider, llm_kwargs, variables, _template_format(prompt_template)
            )
        except blueprint.RenderBudgetError as exc:
            # A template from a shared registry is someone else's code: say whose.
            raise exc.naming(where) from None
    if parameter_overrides:
        kwargs = blueprint.apply_parameter_overrides(provider, kwargs, parameter_overrides)
    if "stream" in kwargs or "stream_options" in kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("stream", "stream_options")}
    kwargs, client_options = split_client_options(provider, kwargs)
    api_type = model.get("api_type")
    template_type = str(prompt_template.get("type") or "chat")
    base = template.get("provider_base_url")
    base_url = base.get("url") if isinstance(base, dict) else None
    if not base_url:
        base_url = provider_base_urls.get(provider)
    if template_type == "chat":
        input_messages = [_as_logged(m) for m in rendered.get("messages") or ()]
    else:
        input_messages = [
            _as_logged({"role": "user", "content": list(rendered.get("content") or [])})
        ]
    return PreparedRun(
        plan=CallPlan(provider, api_type, template_type, kwargs, client_options, name),
        base_url=base_url or None,
        function_name=blueprint.function_name_for(
            provider, api_type, template_type, model.get("name")
        ),
        model=model,
        input_messages=input_messages,
        template=template,
        variables=variables,
    )


def _as_logged(message: Any) -> Any:
    """A rendered message as the server's blueprint of a logged request shows it."""
    if not isinstance(message, dict):
        return message
    return {**message, "input_variables": [], "template_format": "f-string"}


def debug_call(prepared: PreparedRun, event: str, started: float | None = None) -> None:
    """A DEBUG record of the provider call: provider, model, what happened, how long it took."""
    if logger.isEnabledFor(logging.DEBUG):
        took = "" if started is None else f" after {(time.time() - started) * 1000:.1f} ms"
        model = prepared.model.get("name") or prepared.plan.llm_kwargs.get("model")
        logger.debug("%s model %s: %s%s", prepared.plan.provider, model, event, took)


def _blueprint(prepared: PreparedRun, output: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_template": {
            "type": "chat",
            "messages": [*prepared.input_messages, output],
            "input_variables": [],
        },
        "metadata": {"model": prepared.model},
    }


@dataclass(slots=True)
class RunLog:
    """What the caller asked to log with the run."""

    tags: list[str] | None
    metadata: dict[str, Any] | None
    group_id: int | None

    def record(
        self,
        request_id: str,
        prepared: PreparedRun,
        kwargs: dict[str, Any],
        started: float,
        response: Any,
        *,
        status: str = "SUCCESS",
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> TrackRecord:
        body: dict[str, Any] = {
            "function_name": prepared.function_name,
            "provider_type": prepared.plan.provider,
            "args": [],
            "kwargs": kwargs,
            "request_start_time": started,
            "request_end_time": time.time(),
            "prompt_input_variables": prepared.variables,
            "request_response": response if response is not None else {},
            "status": status,
        }
        t = prepared.template
        for key, value in (
            ("tags", self.tags),
            ("metadata", self.metadata),
            ("group_id", self.group_id),
            ("prompt_id", t.get("id")),
            ("prompt_version", t.get("version")),
            ("api_type", prepared.plan.api_type),
            ("error_type", error_type),
            ("error_message", error_message[:1024] if error_message else None),
        ):
            if value is not None:
                body[key] = value
        return TrackRecord(client_request_id=request_id, body=body)


def error_type_of(exc: BaseException) -> str:
    """The PromptLayer error category of a provider exception (any provider's SDK)."""
    if isinstance(exc, ProviderKeyError):
        return "PROVIDER_AUTH_ERROR"
    name = type(exc).__name__
    text = str(exc).lower()
    status = status_of(exc)
    if "RateLimit" in name or status == 429 or "Throttling" in text:
        return "PROVIDER_QUOTA_LIMIT" if "quota" in text else "PROVIDER_RATE_LIMIT"
    if "Timeout" in name:
        return "PROVIDER_TIMEOUT"
    if "Authentication" in name or "PermissionDenied" in name or status in (401, 403):
        return "PROVIDER_AUTH_ERROR"
    if "APIError" in name or "APIStatusError" in name or status is not None:
        return "PROVIDER_ERROR"
    return "UNKNOWN_ERROR"


class RecordSink(Protocol):
    """Where a stream's log record goes: the client's shipper, or the server's store."""

    def submit(self, record: TrackRecord) -> None: ...


Inline = Callable[[TrackRecord], Awaitable[tuple[Any, Any] | None]]
"""Ships a record at once and answers (server request id, server blueprint), or None."""


async def execute(
    worker: ProviderWorker,
    shipper: LogShipper,
    prepared: PreparedRun,
    log: RunLog,
    inline: Inline | None = None,
) -> dict[str, Any]:
    """A non-streaming run: call, hand the record to the shipper, return."""
    request_id = new_request_id()
    plan = prepared.plan
    started = time.time()
    debug_call(prepared, "calling the provider")
    try:
        response = await worker.call(plan)
    except Exception as exc:
        debug_call(prepared, f"the call failed: {exc!r}", started)
        shipper.submit(
            log.record(
                request_id,
                prepared,
                plan.llm_kwargs,
                started,
                None,
                status="ERROR",
                error_type=error_type_of(exc),
                error_message=str(exc),
            )
        )
        raise
    debug_call(prepared, "answered", started)
    record = log.record(request_id, prepared, plan.llm_kwargs, started, response)
    if inline is not None:
        answer = await inline(record)
        if answer is not None:
            return {
                "request_id": answer[0],
                "raw_response": response,
                "prompt_blueprint": answer[1],
            }
    else:
        shipper.submit(record)
    output = blueprint.response_message(plan.provider, plan.api_type, response)
    return {
        "request_id": request_id,
        "raw_response": response,
        "prompt_blueprint": _blueprint(prepared, output),
    }


async def stream(
    provider_stream: Any,
    shipper: RecordSink,
    prepared: PreparedRun,
    log: RunLog,
    started: float,
    inline: Inline | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield one item per provider chunk, then a final item carrying ``request_id``.

    Each item's ``prompt_blueprint`` holds everything received so far in its last message. The
    run is logged however the stream ends: complete, failed part-way (with the error), or
    closed early by the consumer (status WARNING, with what had arrived).
    """
    plan = prepared.plan
    acc = blueprint.stream_accumulator(
        plan.provider, plan.api_type, plan.template_type, prepared.model.get("name")
    )
    request_id = new_request_id()
    kwargs = {**plan.llm_kwargs, "stream": True}
    metadata = {"model": prepared.model}
    base = prepared.input_messages
    count = 0
    last: Any = None
    logged = False
    try:
        async for chunk in provider_stream:
            message = acc.add(chunk)
            count += 1
            last = chunk
            yield {
                "request_id": None,
                "raw_response": chunk,
                "prompt_blueprint": {
                    "prompt_template": {
                        "type": "chat",
                        "messages": [*base, message],
                        "input_variables": [],
                    },
                    "metadata": metadata,
                },
            }
        logged = True
        debug_call(prepared, f"the stream ended after {count} chunks", started)
        record = log.record(request_id, prepared, kwargs, started, acc.final_response())
        final_id: Any = request_id
        final_blueprint: Any = None
        if inline is not None:
            answer = await inline(record)
            if answer is not None:
                final_id, final_blueprint = answer
        else:
            shipper.submit(record)
        yield {
            "request_id": final_id,
            "raw_response": last,
            "prompt_blueprint": final_blueprint or _blueprint(prepared, acc.message()),
        }
    except Exception as exc:
        if not logged:
            logged = True
            debug_call(prepared, f"the stream failed after {count} chunks: {exc!r}", started)
            shipper.submit(
                log.record(
                    request_id,
                    prepared,
                    kwargs,
                    started,
                    acc.final_response() if count else None,
                    status="ERROR",
                    error_type=error_type_of(exc),
                    error_message=f"the stream failed after {count} chunks: {exc}",
                )
            )
        raise
    finally:
        if not logged:
            # The consumer stopped early (break, aclose, cancellation): log what arrived.
            shipper.submit(
                log.record(
                    request_id,
                    prepared,
                    kwargs,
                    started,
                    acc.final_response() if count else None,
                    status="WARNING",
                    error_message=f"the consumer closed the stream after {count} chunks; "
                    "the response is partial",
                )
            )
        with anyio.CancelScope(shield=True):
            await close_stream(provider_stream)
