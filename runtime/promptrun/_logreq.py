"""``log_request``: the record of a request the caller made themselves, checked and built.

Shared by both clients; on the caller's path, so it checks with plain ``type()`` tests and
builds the body in one go.
"""

from __future__ import annotations

from typing import Any

from promptrun._errors import PromptLayerValidationError
from promptrun.blueprint._logged import log_request_blueprint
from promptrun.pipeline import new_request_id
from promptrun.wire._limits import MAX_PRICE, MAX_TOKENS
from promptrun.wire._metadata import metadata_problem
from promptrun.wire.ingest import LogRecord
from promptrun.wire.tracking import checked_status, time_problem

__all__ = ["build_log_record", "logged"]

_WHERE = "log_request()"
_NUMBER = (int, float)


def _fail(what: str) -> PromptLayerValidationError:
    return PromptLayerValidationError(f"{_WHERE}: {what}")


def _check_template(name: str, value: Any) -> None:
    kind = value.get("type") if type(value) is dict else None
    parts = "messages" if kind == "chat" else "content"
    if kind not in ("chat", "completion") or type(value.get(parts)) is not list:
        raise _fail(
            f"{name} must be a prompt template dict with type 'chat' or 'completion', "
            f"e.g. {{'type': 'chat', 'messages': [...]}}, got {value!r:.80}"
        )


def _check_count(name: str, value: Any, high: int) -> None:
    if type(value) is not int or not 0 <= value <= high:
        raise _fail(f"{name} must be a whole number from 0 to {high:,}, got {value!r:.80}")


def build_log_record(
    provider: Any,
    model: Any,
    input: Any,
    output: Any,
    request_start_time: Any,
    request_end_time: Any,
    parameters: Any,
    tags: Any,
    metadata: Any,
    prompt_name: Any,
    prompt_version_number: Any,
    prompt_input_variables: Any,
    input_tokens: Any,
    output_tokens: Any,
    price: Any,
    function_name: Any,
    score: Any,
    prompt_id: Any,
    score_name: Any,
    api_type: Any,
    status: Any,
    error_type: Any,
    error_message: Any,
) -> LogRecord:
    """Check the arguments (raising PromptLayerValidationError) and build the record."""
    if type(provider) is not str or not provider:
        raise _fail(f"provider must be a non-empty string such as 'openai', got {provider!r:.80}")
    if type(model) is not str or not model:
        raise _fail(f"model must be a non-empty string such as 'gpt-4o', got {model!r:.80}")
    _check_template("input", input)
    _check_template("output", output)
    for name, t in (("request_start_time", request_start_time),
                    ("request_end_time", request_end_time)):  # fmt: skip
        if type(t) not in _NUMBER:
            raise _fail(f"{name} must be epoch seconds (time.time()), got {t!r:.80}")
        if (problem := time_problem(name, t)) is not None:
            raise _fail(problem)
    for name, d in (("parameters", parameters), ("metadata", metadata),
                    ("prompt_input_variables", prompt_input_variables)):  # fmt: skip
        if d is not None and not isinstance(d, dict):
            raise _fail(f"{name} must be a dict, got {type(d).__name__}")
    if tags is not None and (
        not isinstance(tags, list | tuple) or any(type(t) is not str for t in tags)
    ):
        raise _fail("tags must be a list of strings")
    if metadata and (problem := metadata_problem(metadata)) is not None:
        raise _fail(problem)
    _check_count("input_tokens", input_tokens, MAX_TOKENS)
    _check_count("output_tokens", output_tokens, MAX_TOKENS)
    _check_count("score", score, 100)
    if type(price) not in _NUMBER or not 0 <= price <= MAX_PRICE:
        raise _fail(
            f"price must be a number of dollars from 0 to {MAX_PRICE:,.0f}, got {price!r:.80}"
        )
    for name, v in (("prompt_version_number", prompt_version_number), ("prompt_id", prompt_id)):
        if v is not None and type(v) is not int:
            raise _fail(f"{name} must be an integer, got {v!r:.80}")
    for name, v in (("prompt_name", prompt_name), ("function_name", function_name),
                    ("score_name", score_name), ("api_type", api_type), ("status", status),
                    ("error_type", error_type), ("error_message", error_message)):  # fmt: skip
        if v is not None and type(v) is not str:
            raise _fail(f"{name} must be a string, got {v!r:.80}")
    if status is not None:
        try:
            status = checked_status(status)  # the server's rule: stored upper-case
        except ValueError as exc:
            raise _fail(str(exc)) from None
    body: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "input": input,
        "output": output,
        "request_start_time": request_start_time,
        "request_end_time": request_end_time,
        "parameters": parameters or {},
        "tags": list(tags) if tags else [],
        "metadata": metadata or {},
        "prompt_input_variables": prompt_input_variables or {},
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "price": price,
        "function_name": function_name,
        "score": score,
        "status": status,
    }
    for key, value in (("prompt_name", prompt_name),
                       ("prompt_version_number", prompt_version_number),
                       ("prompt_id", prompt_id), ("score_name", score_name),
                       ("api_type", api_type), ("error_type", error_type),
                       ("error_message", error_message)):  # fmt: skip
        if value is not None:
            body[key] = value
    return LogRecord(client_request_id=new_request_id(), body=body)


def logged(record: LogRecord) -> dict[str, Any]:
    """What ``log_request`` returns at once: the PromptLayer API's answer, with the client's id.

    ``{"id", "request_id", "prompt_version"}``; ``prompt_version`` is the blueprint the server
    stores (input plus output, and the model). Built from the record already checked, so it
    cannot fail.
    """
    body = record.body
    rid = record.client_request_id
    blueprint = log_request_blueprint(
        body["provider"], body["model"], body["parameters"], body.get("api_type"),
        body["input"], body["output"],
    )  # fmt: skip
    return {"id": rid, "request_id": rid, "prompt_version": blueprint}
