"""Tool nodes: an HTTP endpoint (POST the inputs as JSON, read JSON back) or a Python callable.

Callables exist only in local execution (``tools={"name": fn}``); a sync callable runs in a
worker thread so it cannot stall the other nodes, an async one runs in the node's task. Both
are called with the node's inputs as keyword arguments. HTTP calls go through
:func:`~promptrun.workflows._tool_http.open_tool_session`'s session, never follow redirects,
read at most :data:`MAX_TOOL_RESPONSE` bytes (decompressed), send no credentials from the URL
and may not set ``Host`` or framing headers; on the server their destination is checked too
(:mod:`promptrun.workflows._destinations`).
"""

from __future__ import annotations

import functools
import inspect
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from promptrun.workflows._destinations import (
    FORBIDDEN_HEADERS,
    DestinationRefused,
    parse_tool_url,
)
from promptrun.workflows._tool_http import inflate
from promptrun.workflows.definition import ToolConfig
from promptrun.workflows.nodes._base import NodeContext, NodeError, NodeOutcome, NodeServices

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_TOOL_RESPONSE", "call_callable_tool", "call_http_tool", "run_tool"]

MAX_TOOL_RESPONSE = 4 * 1024 * 1024


def _label(config: ToolConfig) -> str:
    return repr(config.name) if config.name else config.url or "the tool"


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    # StreamReader.read(n) returns what has arrived (maybe one chunk), not n bytes.
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def call_http_tool(
    session: aiohttp.ClientSession, config: ToolConfig, inputs: dict[str, Any]
) -> Any:
    """POST ``inputs`` to the tool's URL; its JSON answer (or text when it is not JSON)."""
    import aiohttp

    assert config.url is not None
    label = _label(config)
    try:
        # The URL as checked (dot segments resolved): sent as is, never parsed again.
        url = parse_tool_url(config.url).url
    except DestinationRefused as exc:  # its message names the URL
        raise NodeError(str(exc), None) from None
    bad = sorted(h for h in config.headers if h.lower() in FORBIDDEN_HEADERS)
    if bad:
        raise NodeError(f"tool {label}: a tool node may not set the {', '.join(bad)} header", None)
    try:
        body = msgspec.json.encode(inputs)
    except (TypeError, msgspec.EncodeError) as exc:
        raise NodeError(f"tool {label}: its inputs are not JSON: {exc}", str(exc)) from None
    headers = {"Content-Type": "application/json", **config.headers}
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=config.timeout),
        ) as response:
            raw = await _read_at_most(response.content, MAX_TOOL_RESPONSE + 1)
            status = response.status
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            location = response.headers.get("Location")
    except TimeoutError:
        raise NodeError(f"tool {label} did not answer within {config.timeout:g} s", None) from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, DestinationRefused):
            raise NodeError(f"tool {label}: {exc.os_error}", None) from None
        text = f"{type(exc).__name__}: {exc}"
        raise NodeError(f"tool {label} could not be reached: {text}", text) from None
    except aiohttp.ClientError as exc:
        text = f"{type(exc).__name__}: {exc}"
        raise NodeError(f"tool {label} could not be reached: {text}", text) from None
    if len(raw) > MAX_TOOL_RESPONSE:
        raise NodeError(f"tool {label} answered more than {MAX_TOOL_RESPONSE} bytes", None)
    try:
        decoded = inflate(raw, encoding, MAX_TOOL_RESPONSE)
    except zlib.error as exc:
        message = f"tool {label} answered a {encoding} body that does not decode"
        raise NodeError(message, str(exc)) from None
    if decoded is None:
        raise NodeError(
            f"tool {label} answered Content-Encoding {encoding!r}; tools are asked for identity "
            "(gzip and deflate are decoded too)",
            None,
        )
    if len(decoded) > MAX_TOOL_RESPONSE:
        raise NodeError(f"tool {label} answered more than {MAX_TOOL_RESPONSE} bytes", None)
    text = decoded.decode("utf-8", "replace")
    if 300 <= status < 400:
        raise NodeError(
            f"tool {label} answered HTTP {status} (a redirect to {location!r}); tool calls do "
            "not follow redirects: use the final URL",
            text[:4000],
        )
    if not 200 <= status < 300:
        raise NodeError(f"tool {label} answered HTTP {status}: {text[:500]}", text[:4000])
    if not decoded.strip():
        return None
    try:
        return msgspec.json.decode(decoded)
    except msgspec.DecodeError:
        return text


async def call_callable_tool(
    fn: Callable[..., Any], config: ToolConfig, inputs: dict[str, Any]
) -> Any:
    """Call a local tool with ``inputs`` as keyword arguments, within the tool's timeout."""
    label = _label(config)
    try:
        with anyio.fail_after(config.timeout):
            if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
                getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
            ):
                return await fn(**inputs)
            result = await anyio.to_thread.run_sync(
                functools.partial(fn, **inputs), abandon_on_cancel=True
            )
            if inspect.isawaitable(result):
                return await result
            return result
    except TimeoutError:
        raise NodeError(f"tool {label} did not finish within {config.timeout:g} s", None) from None
    except NodeError:
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        raise NodeError(f"tool {label} raised {text}", text) from None


async def run_tool(ctx: NodeContext, config: ToolConfig, services: NodeServices) -> NodeOutcome:
    return NodeOutcome(value=await services.call_tool(ctx, config))
