"""OTLP/HTTP traces, the bytes: an ``ExportTraceServiceRequest`` in, span rows and answers out.

Pure code: no I/O. A request body decodes (:func:`decode_request`) into the spans the store
keeps and the ones refused, each refusal with its reason; the route answers with
:func:`encode_response` (an ``ExportTraceServiceResponse``, with ``partial_success`` when spans
were refused) or, when the whole request fails, :func:`encode_status` (a ``google.rpc.Status``),
both in the request's encoding, as the OTLP specification asks.

- Binary protobuf (``application/x-protobuf``) decodes with the generated classes of the
  ``opentelemetry-proto`` package (``pip install 'promptrun[otlp]'``), imported on first use.
- JSON (``application/json``) is OTLP/JSON, decoded with msgspec: ids are hex strings, keys
  lowerCamelCase, enums integers, 64-bit integers numbers or strings; unknown fields are
  ignored, as OTLP asks of a receiver.
- The two answers are small enough to encode by hand, so a server without the package still
  answers a protobuf request properly (415, saying what to install).

A span is refused, and counted in ``rejected_spans``, when it cannot be stored as a span: a
trace id that is not 16 bytes, a span id that is not 8, an id of zeros, or a time outside
the databases' 64-bit nanoseconds. Everything else is kept as sent: attributes, events and
links as JSON (bytes as base64), the resource's attributes and the instrumentation scope.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from promptrun.server._http import LONE_SURROGATE, lone_surrogate
from promptrun.server.otlp_json import (
    ExportTraceServiceRequest,
    JsonAnyValue,
    JsonKeyValue,
    JsonSpan,
)
from promptrun.server.store.base import SpanRow

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "JSON",
    "PROTOBUF",
    "Decoded",
    "Encoding",
    "OtlpError",
    "ProtobufUnavailable",
    "decode_request",
    "encode_response",
    "encode_status",
]

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
Encoding = Literal["application/x-protobuf", "application/json"]

MAX_REASONS = 3  # reasons named in a partial success's message
_MAX_NS = 2**63 - 1
_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("UNSET", "OK", "ERROR")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_HEX = frozenset("0123456789abcdef")
_encode = msgspec.json.encode
_JSON_REQUEST = msgspec.json.Decoder(ExportTraceServiceRequest)


class OtlpError(Exception):
    """The request as a whole cannot be taken: answered 400 (the sender should not retry)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtobufUnavailable(OtlpError):
    """A protobuf request to a server without ``opentelemetry-proto``."""


@dataclass(slots=True)
class Decoded:
    """The spans to store, and how many were refused (with the first few reasons)."""

    spans: list[SpanRow] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, where: str, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{where}: {reason}")

    def message(self) -> str:
        """The partial success's ``error_message``: empty when nothing was refused."""
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        tail = f"; and {more} more" if more > 0 else ""
        spans = "span was" if self.rejected == 1 else "spans were"
        return f"{self.rejected} {spans} not stored: " + "; ".join(self.reasons) + tail


def decode_request(raw: bytes, encoding: Encoding) -> Decoded:
    """The spans of an ``ExportTraceServiceRequest`` body; :class:`OtlpError` if it is not one."""
    if encoding == PROTOBUF:
        return _decode_protobuf(raw)
    return _decode_json(raw)


# --- one span, whichever encoding it came in ----------------------------------------------


def _hex_id(value: str, digits: int, what: str) -> str:
    value = value.lower()
    if len(value) != digits or not _HEX.issuperset(value):
        raise ValueError(f"{what} {value[:40]!r} is not {digits // 2} bytes ({digits} hex digits)")
    if value == "0" * digits:
        raise ValueError(f"{what} is all zeros (an invalid id)")
    return value


def _nanos(value: int | str, what: str) -> int:
    if isinstance(value, str):
        text = value
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{what} {text[:40]!r} is not an integer") from None
    if not 0 <= value <= _MAX_NS:
        raise ValueError(f"{what} {value} is outside 0..2^63-1 nanoseconds")
    return value


def _enum(value: int | str, names: tuple[str, ...], prefix: str) -> str:
    """An enum's stored name from its number, or from its name (some senders use names)."""
    if isinstance(value, str):
        wanted = value.upper().removeprefix(prefix)
        return next((name for name in names if name.upper() == wanted), names[0])
    return names[value] if 0 <= value < len(names) else names[0]


@dataclass(frozen=True, slots=True)
class _Origin:
    """What a span inherits from its resource and scope."""

    service_name: str
    resource: str
    scope_name: str
    scope_version: str


def _service(resource: dict[str, Any]) -> str:
    name = resource.get("service.name")
    return name if isinstance(name, str) and name else "unknown_service"


def _row(
    origin: _Origin,
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    name: str,
    kind: int | str,
    start: int | str,
    end: int | str,
    status_code: int | str,
    status_message: str,
    attributes: dict[str, Any],
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> SpanRow:
    """A span as stored; ``ValueError`` says why it cannot be."""
    parent = _hex_id(parent_span_id, 16, "parentSpanId") if parent_span_id else None
    return SpanRow(
        trace_id=_hex_id(trace_id, 32, "traceId"),
        span_id=_hex_id(span_id, 16, "spanId"),
        parent_span_id=parent,
        name=name,
        kind=_enum(kind, _KINDS, "SPAN_KIND_"),
        service_name=origin.service_name,
        start_ns=_nanos(start, "startTimeUnixNano"),
        end_ns=_nanos(end, "endTimeUnixNano"),
        status_code=_enum(status_code, _STATUSES, "STATUS_CODE_"),
        status_message=status_message or None,
        attributes=_encode(attributes).decode(),
        events=_encode(events).decode(),
        links=_encode(links).decode(),
        resource=origin.resource,
        scope_name=origin.scope_name,
        scope_version=origin.scope_version,
    )


def _decode_spans(
    resource_spans_list: Iterable[Any],
    attributes_of: Callable[[Any], dict[str, Any]],
    span_fields: Callable[[Any], dict[str, Any]],
) -> Decoded:
    """Every span of a request, whichever encoding its messages came in (the generated
    protobuf classes and the JSON Structs have the same field names)."""
    decoded = Decoded()
    for r, resource_spans in enumerate(resource_spans_list):
        resource = attributes_of(resource_spans.resource.attributes)
        resource_json = _encode(resource).decode()
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope = scope_spans.scope
            origin = _Origin(_service(resource), resource_json, scope.name, scope.version)
            for i, span in enumerate(scope_spans.spans):
                try:
                    row = _row(origin, **span_fields(span))
                except (ValueError, RecursionError) as exc:
                    reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
                    decoded.refuse(f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]", reason)
                    continue
                decoded.spans.append(row)
    return decoded


# --- protobuf -------------------------------------------------------------------------------


def _pb_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _pb_attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in pairs}


def _decode_protobuf(raw: bytes) -> Decoded:
    try:
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest as ProtoRequest,
        )
    except ImportError:
        raise ProtobufUnavailable(
            "this server cannot read OTLP protobuf: install the otlp extra "
            "(pip install 'promptrun[otlp]') and restart it, or export OTLP/JSON "
            "(Content-Type: application/json)"
        ) from None
    request = ProtoRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise OtlpError(f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    return _decode_spans(request.resource_spans, _pb_attributes, _pb_span)


def _pb_span(span: Any) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": span.kind,
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "status_code": span.status.code,
        "status_message": span.status.message,
        "attributes": _pb_attributes(span.attributes),
        "events": [
            {
                "name": e.name,
                "time_unix_nano": e.time_unix_nano,
                "attributes": _pb_attributes(e.attributes),
            }
            for e in span.events
        ],
        "links": [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": _pb_attributes(link.attributes),
            }
            for link in span.links
        ],
    }


# --- JSON -----------------------------------------------------------------------------------


def _json_value(value: JsonAnyValue | None) -> Any:
    if value is None:
        return None
    if value.string_value is not None:
        return value.string_value
    if value.int_value is not None:
        number = value.int_value
        if isinstance(number, str):
            try:
                return int(number)
            except ValueError:
                return number  # kept as sent rather than lost
        return number
    if value.bool_value is not None:
        return value.bool_value
    if value.double_value is not None:
        double = value.double_value
        if isinstance(double, str):  # "NaN", "Infinity", or a number in a string
            try:
                return float(double)
            except ValueError:
                return double
        return double
    if value.array_value is not None:
        return [_json_value(v) for v in value.array_value.values]
    if value.kvlist_value is not None:
        return _json_attributes(value.kvlist_value.values)
    if value.bytes_value is not None:
        return value.bytes_value  # base64 already, as stored for protobuf's bytes
    return None


def _json_attributes(pairs: Iterable[JsonKeyValue]) -> dict[str, Any]:
    return {kv.key: _json_value(kv.value) for kv in pairs}


def _decode_json(raw: bytes) -> Decoded:
    try:
        request = _JSON_REQUEST.decode(raw or b"{}")
    except msgspec.DecodeError as exc:  # ValidationError included
        problem = LONE_SURROGATE if lone_surrogate(raw) else str(exc)
        raise OtlpError(
            f"the body is not an OTLP/JSON ExportTraceServiceRequest: {problem}"
        ) from None
    except (RecursionError, UnicodeDecodeError):
        raise OtlpError("the body is not valid JSON (nested too deeply, or not UTF-8)") from None
    return _decode_spans(request.resource_spans, _json_attributes, _json_span)


def _json_span(span: JsonSpan) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "status_code": span.status.code,
        "status_message": span.status.message,
        "attributes": _json_attributes(span.attributes),
        "events": [
            {
                "name": e.name,
                "time_unix_nano": _nanos(e.time_unix_nano, "timeUnixNano"),
                "attributes": _json_attributes(e.attributes),
            }
            for e in span.events
        ],
        "links": [
            {
                "trace_id": link.trace_id.lower(),
                "span_id": link.span_id.lower(),
                "attributes": _json_attributes(link.attributes),
            }
            for link in span.links
        ],
    }


# --- answers --------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative int32/int64: two's complement, as protobuf sends it
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: int | bytes) -> bytes:
    """A varint (int) or length-delimited (bytes) protobuf field."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_response(encoding: Encoding, rejected: int = 0, message: str = "") -> bytes:
    """An ``ExportTraceServiceResponse``: empty for full success, else ``partial_success``."""
    if encoding == JSON:
        if not rejected and not message:
            return b"{}"
        return _encode({"partialSuccess": {"rejectedSpans": rejected, "errorMessage": message}})
    if not rejected and not message:
        return b""
    partial = (_field(1, rejected) if rejected else b"") + (
        _field(2, message.encode()) if message else b""
    )
    return _field(1, partial)


def encode_status(encoding: Encoding, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` with a gRPC ``code`` (3 invalid argument, 16 unauthenticated,
    8 resource exhausted, 14 unavailable, ...) and a message for the sender's developer."""
    if encoding == JSON:
        return _encode({"code": code, "message": message})
    return _field(1, code) + _field(2, message.encode())
