"""What every differential test does: publish, run through both paths, compare."""

from __future__ import annotations

from typing import Any

from .._clients import Factory, Probe
from ._tape import Tape

VARS = {"q": "why is the sky blue", "name": "Ada", "topic": "tea", "subject": "rain"}


async def publish(probe: Probe, corpus: dict[str, Any], name: str) -> None:
    body = corpus[name]
    if body is None:
        await probe.publish(name)
        return
    await probe._call(
        "POST",
        "/rest/prompt-templates",
        {"prompt_template": {"prompt_name": name}, "prompt_version": body},
    )


def described(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc),
        "message": str(exc),
        "status": getattr(exc, "status_code", None),
        "body": getattr(exc, "body", None),
        "request_id": getattr(exc, "request_id", None),
        # google-genai's APIError keeps these instead
        "code": getattr(exc, "code", None),
        "api_status": getattr(exc, "status", None),
        "details": getattr(exc, "details", None),
    }


async def one_run(make_client: Factory, native: bool, name: str, stream: bool) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    async with make_client(native_transport=native) as pl:
        try:
            if stream:
                items = []
                async for item in await pl.run(name, input_variables=VARS, stream=True):
                    items.append(item)
                outcome["chunks"] = [i["raw_response"].model_dump() for i in items]
                outcome["chunk_classes"] = [type(i["raw_response"]) for i in items]
                outcome["blueprints"] = [i["prompt_blueprint"] for i in items]
            else:
                result = await pl.run(name, input_variables=VARS)
                outcome["raw"] = result["raw_response"].model_dump()
                outcome["request_id"] = getattr(result["raw_response"], "_request_id", None)
                outcome["blueprint"] = result["prompt_blueprint"]
                outcome["class"] = type(result["raw_response"])
        except Exception as exc:
            outcome["error"] = described(exc)
        assert await pl.flush(timeout=10)
    return outcome


_VARYING = {
    "id",
    "request_id",
    "client_request_id",
    "request_start_time",
    "request_end_time",
    "created_at",
    "latency_ms",
}


def stored(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _VARYING}


async def both_paths(
    make_client: Factory,
    probe: Probe,
    tape: Tape,
    corpus: dict[str, Any],
    name: str,
    stream: bool,
    telemetry: str = "x-stainless-lang",
    **control: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The outcome of the SDK path, then of the native path (answered from the tape).

    ``telemetry``: a header only the SDK sends, which shows the SDK path ran."""
    await publish(probe, corpus, name)
    if control:
        await probe.sandbox(**control)
    sdk = await one_run(make_client, False, name, stream)
    sdk_sent = tape.sent
    tape.replay()
    native = await one_run(make_client, True, name, stream)
    # The SDK path sends its telemetry headers, the native one does not: both paths ran.
    assert all(telemetry in s.headers for s in sdk_sent)
    assert not any(
        k.startswith("x-stainless") or k == telemetry for s in tape.sent for k in s.headers
    )
    assert [s.method for s in tape.sent] == [s.method for s in sdk_sent]
    assert [s.path for s in tape.sent] == [s.path for s in sdk_sent]
    assert [s.body for s in tape.sent] == [s.body for s in sdk_sent]
    assert [s.api_headers for s in tape.sent] == [s.api_headers for s in sdk_sent]
    records = await probe.requests()
    assert len(records) == 2
    assert stored(records[0]) == stored(records[1]), (stored(records[0]), stored(records[1]))
    return sdk, native
