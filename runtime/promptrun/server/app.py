"""The aiohttp application behind ``promptrun serve``.

``create_app(config)`` builds it; running it is the caller's business (``server.run`` for the
CLI, ``promptrun.testing`` for tests, ``aiohttp.test_utils.TestServer`` for unit tests). The
store opens when the app starts and is flushed and closed when it stops.

Every error leaves as JSON ``{"success": false, "message": ...}``: 400 for a body that is not
JSON or does not fit the endpoint's schema, 401 for a missing, unknown or revoked key, 403
for a member key managing keys, 404 for what the workspace does not have, 409 for revoking
a workspace's last admin key, 413 for a body over ``max_body_bytes``, 422 for a template
that cannot be rendered (or goes past the render budget), 503 when no render thread frees
up in time; anything unexpected is logged and answered 500 without internals.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from promptrun._errors import PromptLayerValidationError
from promptrun._render_threads import RenderBusyError
from promptrun.server import _faults, _slashes, openapi, ws
from promptrun.server._bodies import (
    BodyTooLarge,
    UnsupportedCoding,
    expect_handler,
    refusal,
    unread_body_middleware,
    unreadable_body,
)
from promptrun.server._body_budget import BODY_BUDGET, BodyBudget, BodyBudgetBusy
from promptrun.server._connections import (
    GUARD,
    ConnectionGuard,
    ConnectionLimits,
    connection_middleware,
)
from promptrun.server._http import ApiError, shaped_error
from promptrun.server._state import CONFIG, KEYRING, STORE, ServerConfig
from promptrun.server.auth import KeyRing
from promptrun.server.openapi import OPENAPI, ApiDescription
from promptrun.server.routes import (
    health,
    ingest,
    keys,
    labels,
    otlp,
    requests,
    templates,
    traces,
    tracking,
    workflows,
)
from promptrun.server.store import postgres_store, sqlite_store
from promptrun.server.store.base import NotFoundError, Store
from promptrun.server.ws import HUB, TokenSigner

__all__ = ["ServerConfig", "create_app"]

log = logging.getLogger("promptrun.server")


def _http_message(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, BodyTooLarge):
        return refusal(exc)[1]
    if isinstance(exc, web.HTTPNotFound):
        return f"no such endpoint: {request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path}; use {allowed}"
    return exc.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the JSON error shape (or the endpoint's own) with the right
    status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return shaped_error(request, exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return shaped_error(request, exc.status, _http_message(request, exc), headers)
    except UnsupportedCoding as exc:
        return shaped_error(request, *refusal(exc))
    except BodyBudgetBusy as exc:
        response = shaped_error(request, 503, exc.message, {"Retry-After": str(exc.retry_after)})
        response.force_close()  # the body is part read: do not read (and hold) the rest
        return response
    except RequestPayloadError as exc:  # a body that cannot be decompressed, or cut short
        response = shaped_error(request, 400, unreadable_body(request, exc))
        response.force_close()  # the rest of that body cannot be read either: no keep-alive
        return response
    except msgspec.ValidationError as exc:
        return shaped_error(request, 400, f"invalid request body: {exc}")
    except msgspec.DecodeError as exc:
        return shaped_error(request, 400, f"request body is not valid JSON: {exc}")
    except NotFoundError as exc:
        return shaped_error(request, 404, exc.message)
    except RenderBusyError as exc:
        return shaped_error(request, 503, exc.message, {"Retry-After": "1"})
    except PromptLayerValidationError as exc:
        return shaped_error(request, 422, exc.message)
    except ConnectionResetError:
        if request.transport is not None and not request.transport.is_closing():
            # Not this request's client (a connection the handler made itself): a real failure.
            return _unexpected(request)
        # The client hung up mid-request: nobody is left to answer.
        log.debug("the client closed the connection during %s %s", request.method, request.path)
        response = shaped_error(request, 400, "the client closed the connection mid-request")
        response.force_close()
        return response
    except Exception:
        return _unexpected(request)


def _unexpected(request: web.Request) -> web.Response:
    """A 500 for a failure no one foresaw; the traceback goes to the server log."""
    log.exception("unexpected error on %s %s", request.method, request.path)
    return shaped_error(request, 500, "internal server error; the server log has the details")


@contextlib.asynccontextmanager
async def _shared_hub(app: web.Application, store: Store) -> AsyncIterator[None]:
    """Websocket tokens and pushes that work across every process on the store's database."""
    hub = app[HUB]
    hub.signer = TokenSigner(await store.shared_secret("ws-token-signing"))
    relay = await store.open_relay(hub.deliver)
    hub.relay = relay
    try:
        yield
    finally:
        hub.relay = None
        if relay is not None:
            await relay.close()


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.start()
    try:
        await app[KEYRING].start()
        try:
            if HUB not in app:
                yield
            else:
                async with _shared_hub(app, store):
                    yield
        finally:
            await app[KEYRING].close()
    finally:
        await store.close()


def _open_store(config: ServerConfig) -> Store:
    if config.database_url is not None:
        return postgres_store(config.database_url, max_connections=config.db_connections)
    return sqlite_store(
        config.db_path, write_batch=config.write_batch, read_threads=config.read_threads
    )


def limits_of(config: ServerConfig) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=config.max_connections,
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        keepalive_timeout=config.keepalive_timeout,
    )


def _add_routes(app: web.Application, table: web.RouteTableDef) -> None:
    """``app.add_routes(table)``, each route answering ``Expect: 100-continue`` itself."""
    for route in table:
        if isinstance(route, web.RouteDef):
            kwargs = {"expect_handler": expect_handler, **route.kwargs}
            app.router.add_route(route.method, route.path, route.handler, **kwargs)
        else:
            route.register(app.router)


def create_app(config: ServerConfig) -> web.Application:
    """The application for ``config``: routes, middlewares, store lifetime, sandbox."""
    middlewares = [unread_body_middleware, error_middleware, connection_middleware]
    if config.fault_injection:
        middlewares.append(_faults.fault_middleware)
    middlewares.append(_slashes.merge_slashes_middleware)  # innermost: after routing, faults
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes)
    store = _open_store(config)
    app[CONFIG] = config
    app[GUARD] = ConnectionGuard(limits_of(config))
    app[BODY_BUDGET] = BodyBudget(config.max_inflight_body_bytes)
    app[STORE] = store
    app[KEYRING] = KeyRing(store, config.api_keys, generate=config.generate_key)
    app.cleanup_ctx.append(_lifetime)
    api = app[OPENAPI] = ApiDescription()
    workflows.setup_workflows(app, store)  # after the store's lifetime: closes first
    otlp.setup_otlp(app, config.max_pending_spans)
    modules = (
        health, openapi, templates, labels, tracking, ingest, requests, workflows, ws, otlp,
        traces, keys,
    )  # fmt: skip
    for module in modules:
        _add_routes(app, module.routes)
        # A module without OPERATIONS is missing from the OpenAPI document; a test says so.
        api.operations.extend(getattr(module, "OPERATIONS", ()))
    if config.fault_injection:
        app[_faults.FAULTS] = _faults.FaultInjector()
        app.add_routes(_faults.routes)
        api.operations.extend(_faults.OPERATIONS)
    if config.sandbox:
        from promptrun.server.sandbox import SandboxSettings, create_sandbox_app

        settings = SandboxSettings(
            latency_ms=config.sandbox_latency_ms, chunks=config.sandbox_chunks
        )
        app.add_subapp("/sandbox", create_sandbox_app(settings, authorize=app[KEYRING].knows))
    from promptrun.server.dashboard import add_dashboard  # jinja2 loads only when serving

    add_dashboard(app)
    return app
