"""An httpx client on the sandbox, authenticated with the seeded API token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from connector.dev.sandbox.pipedrive import PipedriveSandbox

DEAL_ORDER = "c165bc61951e95e290ebcf2f7ee70400f367a9e4"  # seed: deal "D365 sales order" (varchar)
DEAL_TERMS = "6bd238249aa6b29ae08650866bda87a31dfd79a2"  # enum EXW 31 / FCA 32 / DAP 33
DEAL_CHANNELS = "b76cddaf213710643de6f56ddff3f38e2c80fdc0"  # set Web 41 / Field sales 42 / Partner 43
DEAL_FREIGHT = "bb143a489d92400d71a1cc713a73b40fe46aaf37"  # monetary
ORG_ACCOUNT = "cf99acb193e13ea55589931218b27e54c1affacd"  # organization "D365 customer account"


@pytest.fixture
async def api(pipedrive_sim: PipedriveSandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-token": pipedrive_sim.api_token}
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url, headers=headers) as client:
        yield client


class Receiver:
    """A webhook endpoint on loopback: records each request; answers from a script of statuses (then 200)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.hang = asyncio.Event()  # set by teardown; a handler told to hang waits on it
        self.hang_next = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append({"headers": dict(request.headers), "body": await request.json()})
        if self.hang_next > 0:
            self.hang_next -= 1
            await self.hang.wait()
        status = self.script.pop(0) if self.script else 200
        return web.json_response({"ok": status < 300}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    rec.hang.set()
    await runner.cleanup()
