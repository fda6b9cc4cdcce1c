"""The local runner: the function app's HTTP routes, queue workers and timer, without the Functions host.

Core Tools cannot be installed everywhere (it downloads a binary), so `ml-connector serve`/`sync`
and the demo run the very same function bodies (`connector.functions.*`) here. The queue pump copies
the host's rules: a message is deleted when the body returns, made visible again when it raises, and
moved to `<queue>-poison` once its dequeue count reaches MAX_DEQUEUE_COUNT (host.json maxDequeueCount).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connector.flows.context import Checkpoint
from connector.functions.http import HttpIn, HttpOut, json_error, json_response
from connector.queues import poison_name
from connector.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class PumpStats:
    processed: int = 0
    failed_attempts: int = 0
    poisoned: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


# A queue trigger body: (text, dequeue_count=, checkpoint=) -> a result with `.outcome`, or None (parked).
MessageHandler = Callable[..., Awaitable[Any]]


class QueuePump:
    """Drains one queue like its queue trigger does (batch of `batch_size`, concurrent).

    The order queue and `handle_order_message` unless `queue` and `handler` say otherwise.
    """

    def __init__(
        self,
        rt: Runtime,
        *,
        queue: str | None = None,
        handler: MessageHandler | None = None,
        batch_size: int = 16,
        visibility_timeout: int = 60,
        retry_after: int = 1,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.rt = rt
        self.queue = queue or rt.queues.order_queue
        self.handler = handler
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self.retry_after = retry_after
        self.checkpoint = checkpoint
        self.stats = PumpStats()

    @classmethod
    def for_masters(cls, rt: Runtime, **kwargs: Any) -> QueuePump:
        from connector.functions.traced import master_message

        return cls(rt, queue=rt.queues.master_queue, handler=master_message, **kwargs)

    async def run_once(self) -> int:
        """Receive one batch and process it; returns how many messages were received."""
        handler = self.handler
        if handler is None:
            from connector.functions.traced import order_message

            handler = order_message
        queue = await self.rt.queues.client(self.queue)
        batch = [
            m
            async for m in queue.receive_messages(
                max_messages=self.batch_size, visibility_timeout=self.visibility_timeout
            )
        ]

        async def one(msg: Any) -> None:
            text = str(msg.content)
            try:
                result = await handler(text, dequeue_count=msg.dequeue_count or 1, checkpoint=self.checkpoint)
            except Exception as exc:
                self.stats.failed_attempts += 1
                if (msg.dequeue_count or 1) >= self.rt.settings.max_dequeue_count:
                    await self._poison(queue, msg, text, exc)
                else:
                    log.warning("%s message failed (attempt %s): %s", self.queue, msg.dequeue_count, exc)
                    await queue.update_message(msg, visibility_timeout=self.retry_after)
                return
            await queue.delete_message(msg)
            self.stats.processed += 1
            outcome = result.outcome if result is not None else "parked"
            self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1

        await asyncio.gather(*(one(m) for m in batch))
        return len(batch)

    async def _poison(self, queue: Any, msg: Any, text: str, exc: BaseException) -> None:
        poison = await self.rt.queues.client(poison_name(self.queue))
        await poison.send_message(text, time_to_live=-1)
        await queue.delete_message(msg)
        self.stats.poisoned += 1
        await self.rt.state.audit.append(
            f"queue-{self.queue}",
            "message.poisoned",
            correlation_id="",
            level="error",
            detail={"dequeue_count": msg.dequeue_count, "error": f"{type(exc).__name__}: {exc}"[:500]},
        )

    async def drain(self) -> PumpStats:
        """Process until a receive comes back empty (delayed messages stay for a later drain)."""
        while await self.run_once():
            pass
        return self.stats


Handler = Any  # async (HttpIn) -> HttpOut


def build_http_app(rt: Runtime, *, admin_key: str | None = None) -> web.Application:
    """aiohttp app with the function app's routes; admin routes need `admin_key` (like a function key)."""
    from connector.functions.admin import handle_replay
    from connector.functions.d365_events import handle_d365_events
    from connector.functions.traced import pipedrive_webhook as handle_pipedrive_webhook

    async def adapt(request: web.Request, handler: Handler, *, admin: bool = False) -> web.Response:
        if admin and admin_key is not None:
            given = request.headers.get("x-functions-key") or request.query.get("code") or ""
            if not hmac.compare_digest(given.encode(), admin_key.encode()):
                return _to_aiohttp(json_error(401, "missing or wrong function key"))
        req = HttpIn(
            method=request.method,
            path=request.path,
            body=await request.read(),
            headers=dict(request.headers),
            params=dict(request.query),
        )
        return _to_aiohttp(await handler(req))

    async def health(request: web.Request) -> web.Response:
        from connector.functions.health import health_report

        report = await health_report(rt.settings)
        return _to_aiohttp(json_response(report.http_status, report.model_dump()))

    async def webhook(request: web.Request) -> web.Response:
        return await adapt(request, handle_pipedrive_webhook)

    async def replay(request: web.Request) -> web.Response:
        return await adapt(request, handle_replay, admin=True)

    async def d365_events(request: web.Request) -> web.Response:
        return await adapt(request, handle_d365_events, admin=True)  # function key, as in Azure

    def admin_route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            return await adapt(request, handler, admin=True)

        return route

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/api/pipedrive/webhook", webhook)
    app.router.add_post("/api/d365/events", d365_events)
    app.router.add_post("/api/admin/replay", replay)
    app.router.add_get("/api/health", health)
    from connector.functions.admin_ui import handle_admin_ui, handle_admin_ui_replay, handle_doctor

    app.router.add_get("/api/admin/doctor", admin_route(handle_doctor))
    app.router.add_get("/api/admin/ui", admin_route(handle_admin_ui))
    app.router.add_post("/api/admin/ui/replay", admin_route(handle_admin_ui_replay))
    return app


def _to_aiohttp(out: HttpOut) -> web.Response:
    return web.Response(status=out.status, body=out.body, headers=dict(out.headers))


class LocalHost:
    """HTTP server + both queue pumps + poll timer on loopback; `async with` starts and stops all of it."""

    def __init__(
        self,
        rt: Runtime,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll_every: float | None = None,
        master_every: float | None = None,
        admin_key: str | None = None,
        pump_idle: float = 0.5,
    ) -> None:
        self.rt = rt
        self.host = host
        self.port = port
        self.poll_every = poll_every
        self.master_every = master_every
        self.pump = QueuePump(rt)
        self.master_pump = QueuePump.for_masters(rt)
        self._pump_idle = pump_idle
        self._app = build_http_app(rt, admin_key=admin_key)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pump_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, *, workers: bool = True) -> LocalHost:
        _ = self.rt.mapping  # a bad mapping file fails here, at start, naming the key (not at the first deal)
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        if workers:
            self._stopping.clear()
            self._pump_task = asyncio.create_task(self._pump_loop())
            from connector.functions.timer import run_master_diff
            from connector.functions.traced import poll as run_poll

            for every, job in ((self.poll_every, run_poll), (self.master_every, run_master_diff)):
                if every:
                    self._tasks.append(asyncio.create_task(self._timer_loop(every, job)))
        return self

    async def _pump_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                received = await self.pump.run_once()
                received += await self.master_pump.run_once()
                if not received:
                    await self._idle()  # queue polling interval, as the host does
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue pump error")
                await self._idle()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._pump_idle)

    async def _timer_loop(self, every: float, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer job %s failed", getattr(job, "__name__", job))
            await asyncio.sleep(every)

    async def stop(self, *, grace: float = 30.0) -> None:
        """Finish the batch in hand (like the host draining on shutdown), then stop everything.

        Cancelling mid-batch loses nothing (the claim and adoption make a rerun safe), but it leaves
        the messages invisible until their timeout and the ack undone, so we let the batch end first.
        """
        self._stopping.set()
        if self._pump_task is not None:
            done, _ = await asyncio.wait([self._pump_task], timeout=grace)
            if not done:
                self._tasks.append(self._pump_task)
            self._pump_task = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalHost:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
