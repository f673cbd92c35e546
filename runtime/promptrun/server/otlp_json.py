"""OTLP/JSON: the ``ExportTraceServiceRequest`` and its answers as msgspec Structs.

Field names are lowerCamelCase on the wire, ids are hex strings, enums are integers (their
names are accepted too), and 64-bit integers come as numbers or as decimal strings. Unknown
fields are ignored, as the OTLP specification asks of a receiver, and everything is optional:
a missing field is its protobuf default. The Structs are also the request's schema in the
server's OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "ExportTracePartialSuccess",
    "ExportTraceServiceRequest",
    "ExportTraceServiceResponse",
    "JsonAnyValue",
    "JsonKeyValue",
    "RpcStatus",
]

Int64 = Annotated[
    int | str, msgspec.Meta(description="a 64-bit integer, as a number or a decimal string")
]
Enum = Annotated[int | str, msgspec.Meta(description="the enum's number (or its name)")]
HexId = Annotated[str, msgspec.Meta(description="hex digits; empty for none")]


class _Wire(msgspec.Struct, rename="camel", omit_defaults=True):
    pass


class JsonArrayValue(_Wire):
    values: list[JsonAnyValue] = []


class JsonKeyValueList(_Wire):
    values: list[JsonKeyValue] = []


class JsonAnyValue(_Wire):
    """One of: a string, bool, int, double, array, key-value list or bytes (base64)."""

    string_value: str | None = None
    bool_value: bool | None = None
    int_value: Int64 | None = None
    double_value: float | str | None = None
    array_value: JsonArrayValue | None = None
    kvlist_value: JsonKeyValueList | None = None
    bytes_value: str | None = None


class JsonKeyValue(_Wire):
    key: str = ""
    value: JsonAnyValue | None = None


class JsonResource(_Wire):
    attributes: list[JsonKeyValue] = []
    dropped_attributes_count: int = 0


class JsonScope(_Wire):
    name: str = ""
    version: str = ""
    attributes: list[JsonKeyValue] = []
    dropped_attributes_count: int = 0


class JsonEvent(_Wire):
    time_unix_nano: Int64 = 0
    name: str = ""
    attributes: list[JsonKeyValue] = []
    dropped_attributes_count: int = 0


class JsonLink(_Wire):
    trace_id: HexId = ""
    span_id: HexId = ""
    trace_state: str = ""
    attributes: list[JsonKeyValue] = []
    dropped_attributes_count: int = 0
    flags: int = 0


class JsonStatus(_Wire):
    message: str = ""
    code: Enum = 0


class JsonSpan(_Wire):
    trace_id: HexId = ""
    span_id: HexId = ""
    trace_state: str = ""
    parent_span_id: HexId = ""
    flags: int = 0
    name: str = ""
    kind: Enum = 0
    start_time_unix_nano: Int64 = 0
    end_time_unix_nano: Int64 = 0
    attributes: list[JsonKeyValue] = []
    dropped_attributes_count: int = 0
    events: list[JsonEvent] = []
    dropped_events_count: int = 0
    links: list[JsonLink] = []
    dropped_links_count: int = 0
    status: JsonStatus = msgspec.field(default_factory=JsonStatus)


class JsonScopeSpans(_Wire):
    scope: JsonScope = msgspec.field(default_factory=JsonScope)
    spans: list[JsonSpan] = []
    schema_url: str = ""


class JsonResourceSpans(_Wire):
    resource: JsonResource = msgspec.field(default_factory=JsonResource)
    scope_spans: list[JsonScopeSpans] = []
    schema_url: str = ""


class ExportTraceServiceRequest(_Wire):
    """``POST /v1/traces`` in OTLP/JSON."""

    resource_spans: list[JsonResourceSpans] = []


class ExportTracePartialSuccess(_Wire):
    rejected_spans: Int64 = 0
    error_message: str = ""


class ExportTraceServiceResponse(_Wire):
    """Empty when every span was stored; else how many were not, and why."""

    partial_success: ExportTracePartialSuccess | None = None


class RpcStatus(msgspec.Struct):
    """``google.rpc.Status``: why the whole request failed (``code`` is a gRPC code)."""

    code: int
    message: str
