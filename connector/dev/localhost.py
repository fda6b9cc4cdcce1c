"""The local runner: the function app's HTTP routes, queue workers and timer, without the Functions host.

Core Tools cannot be installed everywhere (it downloads a binary), so `ml-connector serve`/`sync`
and the demo run the very same function bodies (`connector.functions.*`) here. The queue pump copies
the host's rules, with the host's numbers from host.json (`connector.host_json`): `batchSize` messages
at a time; a message is deleted when the body returns, made visible again `visibilityTimeout` after it
raises, and moved to `<queue>-poison` once its dequeue count reaches `maxDequeueCount`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connector.dev.local_http import SafeAppRunner, build_http_app
from connector.flows.context import Checkpoint
from connector.host_json import host_json
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

    The order queue and `handle_order_message` unless `queue` and `handler` say otherwise. `batch_size`
    and `retry_after` (seconds until a message whose run raised is retried) are host.json's `batchSize`
    and `visibilityTimeout` unless given. `visibility_timeout` is how long a received message stays
    hidden while it runs (the host holds it with a renewed 10-minute lock; the pump does not renew).
    """

    def __init__(
        self,
        rt: Runtime,
        *,
        queue: str | None = None,
        handler: MessageHandler | None = None,
        batch_size: int | None = None,
        visibility_timeout: int = 60,
        retry_after: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        rules = host_json().queues
        self.rt = rt
        self.queue = queue or rt.queues.order_queue
        self.handler = handler
        self.batch_size = rules.batch_size if batch_size is None else batch_size
        self.visibility_timeout = visibility_timeout
        self.retry_after = rules.retry_delay_seconds if retry_after is None else retry_after
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
            if (msg.dequeue_count or 1) > self.rt.settings.max_dequeue_count:
                # The host parks a message dequeued more often than allowed without running it (its last
                # run never reported back: the worker was killed). The reconciler finishes its job.
                await self._poison(queue, msg, text, RuntimeError("dequeued more often than maxDequeueCount"))
                return
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


class LocalHost:
    """HTTP server + both queue pumps + poll timer on loopback; `async with` starts and stops all of it.

    The admin routes always need a key: `admin_key`, or a random one made here (read it from `.admin_key`).
    """

    def __init__(
        self,
        rt: Runtime,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll_every: float | None = None,
        master_every: float | None = None,
        reconcile_every: float | None = None,
        admin_key: str | None = None,
        pump_idle: float = 0.5,
    ) -> None:
        self.rt = rt
        self.host = host
        self.port = port
        self.poll_every = poll_every
        self.master_every = master_every
        self.reconcile_every = reconcile_every
        self.pump = QueuePump(rt)
        self.master_pump = QueuePump.for_masters(rt)
        self._pump_idle = pump_idle
        self.admin_key = admin_key or secrets.token_urlsafe(32)
        self._app = build_http_app(rt, admin_key=self.admin_key)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pump_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, *, workers: bool = True) -> LocalHost:
        _ = self.rt.mapping  # a bad mapping file fails here, at start, naming the key (not at the first deal)
        self._runner = SafeAppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        if workers:
            self._stopping.clear()
            self._pump_task = asyncio.create_task(self._pump_loop())
            from connector.functions.timer import run_master_diff, run_reconcile
            from connector.functions.traced import poll as run_poll

            timers = ((self.poll_every, run_poll), (self.master_every, run_master_diff),
                      (self.reconcile_every, run_reconcile))  # fmt: skip
            for every, job in timers:
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
