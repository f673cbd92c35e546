"""An aiohttp web service whose handlers call run() under concurrency.

One AsyncPromptLayer per process, opened with the app and closed with it (``cleanup_ctx``), so
every request shares one HTTP pool, one template cache and one background log shipper.

    python examples/async_web_service.py          # serve on :8080
    python examples/async_web_service.py --selftest 50   # serve, send 50 concurrent requests, stop
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from aiohttp import ClientSession, web

from promptrun import AsyncPromptLayer

PL = web.AppKey("PL", AsyncPromptLayer)


async def promptlayer_ctx(app: web.Application) -> AsyncIterator[None]:
    async with AsyncPromptLayer(cache_ttl_seconds=60) as pl:
        app[PL] = pl
        yield


async def greet(request: web.Request) -> web.Response:
    name = request.query.get("name", "world")
    result = await request.app[PL].run(
        "greet", input_variables={"name": name, "topic": "the sea"}, tags=["web"]
    )
    message = result["prompt_blueprint"]["prompt_template"]["messages"][-1]
    text = "".join(p.get("text", "") for p in message["content"])
    return web.json_response({"reply": text, "request_id": result["request_id"]})


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(promptlayer_ctx)
    app.router.add_get("/greet", greet)
    return app


async def selftest(n: int) -> None:
    runner = web.AppRunner(make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with ClientSession() as http:

        async def one(i: int) -> str:
            async with http.get(f"http://127.0.0.1:{port}/greet", params={"name": f"u{i}"}) as r:
                r.raise_for_status()
                return str((await r.json())["request_id"])

        ids = await asyncio.gather(*(one(i) for i in range(n)))
    await runner.cleanup()  # closes the client: pending logs are shipped first
    print(f"served {len(ids)} concurrent requests, {len(set(ids))} distinct request ids")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--selftest", type=int, metavar="N")
    args = parser.parse_args()
    if args.selftest:
        asyncio.run(selftest(args.selftest))
    else:
        web.run_app(make_app(), host="127.0.0.1", port=8080)
