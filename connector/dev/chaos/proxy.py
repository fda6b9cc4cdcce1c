"""The front door: one webhook URL for Pipedrive, spread over the live workers like the Functions
front end does. A worker that dies mid-request gives Pipedrive a 502 (it retries the delivery later);
no live worker gives a 503."""

from __future__ import annotations

import itertools

import httpx
from aiohttp import web

from connector.dev.chaos.workers import WorkerPool

_HOP = {"host", "content-length", "connection", "transfer-encoding"}


class FrontDoor:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self._turn = itertools.count()
        self._http = httpx.AsyncClient(timeout=30.0)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.forwarded = 0
        self.failed = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FrontDoor:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def _forward(self, request: web.Request) -> web.Response:
        live = self.pool.live()
        if not live:
            self.failed += 1
            return web.json_response({"error": "no worker is running"}, status=503)
        slot = live[next(self._turn) % len(live)]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            answer = await self._http.request(
                request.method, f"{slot.url}{request.rel_url}", content=await request.read(), headers=headers
            )
        except httpx.HTTPError as exc:
            self.failed += 1
            return web.json_response({"error": f"worker {slot.index}: {type(exc).__name__}"}, status=502)
        self.forwarded += 1
        kind = {"Content-Type": answer.headers["content-type"]} if "content-type" in answer.headers else {}
        return web.Response(status=answer.status_code, body=answer.content, headers=kind)

    async def stop(self) -> None:
        await self._http.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
