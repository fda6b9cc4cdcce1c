"""The one job runner (docs/architecture.md, "Job lifecycle"): claim -> run with a renewed lease ->
complete, back off, fail or give up; every kind of job (order build, master push, customer resolution)
goes through it, so the lifecycle rules are written once.

- The lease is renewed by a heartbeat while the body runs, and before every external write
  (`JobHandle.renew`); losing it cancels the body: the job is someone else's now.
- A transient error backs off with growing delays (`Lifecycle.schedule`) until the outage horizon
  (`Lifecycle.horizon`, counted from the first failure); only then does the job fail, with the last error.
- A wait the flow asks for (`RetryLaterError`: throttling, another worker's lease, a settle time) is not
  a failure: the job goes back to the queue with that delay.
- A write is announced on the job (`JobHandle.intend`) before it is sent; a later attempt that finds the
  intent still open looks for the record, after `Lifecycle.settle`, before it may create again.
- Losing the lease on ANOTHER job the body used (a customer resolution, a lock) is transient for this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from connector.errors import PermanentError, RetryLaterError, TransientError, UnknownOutcomeError
from connector.flows.context import FlowContext
from connector.state.job_row import Job
from connector.state.jobs import JobStore, LostLeaseError
from connector.state.tables import now

R = TypeVar("R")
Status = Literal["done", "failed", "retry", "wait", "busy", "duplicate", "superseded", "skipped", "early"]
DEFAULT_SCHEDULE = (30.0, 120.0, 600.0, 1800.0, 3600.0)


@dataclass
class Lifecycle:
    """The timing rules of jobs; built from settings (`Settings.lifecycle()`), shared by all runs."""

    lease_seconds: float = 660.0  # outlives host.json functionTimeout (10 min): a live worker is never overtaken
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    horizon: float = 24 * 3600.0
    settle: float = 900.0  # longer than D365's own request timeout (UNCONFIRMED; docs/unconfirmed.md)
    max_takeovers: int = 5  # leases that ran out under a worker (killed mid-step) before the job fails
    clock: Callable[[], datetime] = field(default=now)
    # Real queue delays are the lifecycle's delays times this: tests on a virtual clock set 0.
    requeue_scale: float = 1.0

    @property
    def heartbeat(self) -> float:
        return max(1.0, self.lease_seconds / 3)

    def backoff(self, failures: int) -> float:
        """The delay before the `failures`-th retry (1-based); the last step repeats."""
        if not self.schedule:
            return 0.0
        return self.schedule[min(max(failures, 1), len(self.schedule)) - 1]


@dataclass
class Run(Generic[R]):
    """What happened to one message's run of a job; the queue worker acts on `status` and `delay`."""

    status: Status
    value: R | None = None
    reason: str | None = None
    delay: float = 0.0
    job: Job | None = None


class JobHandle:
    """A claimed job: the only way a body touches its own row while it runs (one writer, one ETag chain)."""

    def __init__(self, jobs: JobStore, job: Job, lifecycle: Lifecycle) -> None:
        self._jobs = jobs
        self._job = job
        self.lifecycle = lifecycle
        self._lock = asyncio.Lock()

    @property
    def job(self) -> Job:
        return self._job

    @property
    def context(self) -> dict[str, Any]:
        return dict(self._job.context or {})

    def _lease(self) -> datetime:
        return now() + timedelta(seconds=self.lifecycle.lease_seconds)

    async def renew(self) -> None:
        """Extend the lease (before each external write); LostLeaseError when the job was taken over."""
        async with self._lock:
            self._job = await self._jobs.save(self._job, lease_until=self._lease())

    async def remember(self, **facts: Any) -> None:
        """Merge facts into the job's context (kept across attempts), renewing the lease in the same write."""
        async with self._lock:
            context = {**(self._job.context or {}), **facts}
            self._job = await self._jobs.save(self._job, context=context, lease_until=self._lease())

    async def intend(self, op: str, **detail: Any) -> None:
        """Announce a create before sending it; the context is then kept even if a replay re-opens the job."""
        async with self._lock:
            intent = {"op": op, "at": self.lifecycle.clock().isoformat(), "attempt": self._job.attempts, **detail}
            context = {**(self._job.context or {}), "keep": True}
            self._job = await self._jobs.save(self._job, intent=intent, context=context, lease_until=self._lease())

    async def settled(self, **facts: Any) -> None:
        """The announced write is confirmed (created, found or known not to have happened): clear the intent."""
        async with self._lock:
            context = {**(self._job.context or {}), **facts}
            self._job = await self._jobs.save(self._job, intent=None, context=context, lease_until=self._lease())

    def open_intent(self, op: str | None = None) -> dict[str, Any] | None:
        """The write an earlier attempt announced and never confirmed (its outcome is unknown), if any."""
        intent = self._job.intent
        if not intent or (op is not None and intent.get("op") != op):
            return None
        return dict(intent)

    def settle_left(self, intent: dict[str, Any]) -> float:
        """Seconds until a lookup can trust that the announced write is not still on its way."""
        at = datetime.fromisoformat(str(intent["at"]))
        return max(0.0, (at + timedelta(seconds=self.lifecycle.settle) - self.lifecycle.clock()).total_seconds())

    async def complete(self, result: dict[str, Any]) -> Job:
        async with self._lock:
            self._job = await self._jobs.complete(self._job, result)
            return self._job

    async def release(self, error: str, **changes: Any) -> None:
        """Back to queued (after a transient error or a wait); a job taken over meanwhile is left to its owner."""
        with contextlib.suppress(LostLeaseError):
            async with self._lock:
                self._job = await self._jobs.release(self._job, error, **changes)

    async def fail(self, reason: str, error: str) -> None:
        with contextlib.suppress(LostLeaseError):
            async with self._lock:
                self._job = await self._jobs.fail(self._job, reason, {"error": error})

    async def wait_to_settle(self, intent: dict[str, Any], what: str) -> None:
        """Raise RetryLaterError until the settle time after `intent` has passed."""
        left = self.settle_left(intent)
        if left > 0:
            raise RetryLaterError(f"{what}: answer of an earlier attempt was lost; looking again in {left:.0f}s",
                                  delay=left)  # fmt: skip


Body = Callable[[JobHandle], Awaitable[R]]
ResultOf = Callable[[R], dict[str, Any]]


class JobRunner:
    """Runs bodies under the job lifecycle; one per worker process (holds no per-job state)."""

    def __init__(self, jobs: JobStore, worker: str, lifecycle: Lifecycle) -> None:
        self.jobs = jobs
        self.worker = worker
        self.lifecycle = lifecycle

    async def claim(self, kind: str, key: str, *, lease_seconds: float | None = None) -> JobHandle | None:
        lease = lease_seconds if lease_seconds is not None else self.lifecycle.lease_seconds
        job = await self.jobs.claim(kind, key, worker=self.worker, lease_seconds=lease, at=self.lifecycle.clock())
        if job is None:
            return None
        lifecycle = self.lifecycle if lease_seconds is None else _with_lease(self.lifecycle, lease)
        return JobHandle(self.jobs, job, lifecycle)

    async def wait_for(
        self, kind: str, key: str, *, patience: float, lease_seconds: float | None = None
    ) -> JobHandle | Job:
        """Claim the job, or wait up to `patience` seconds for the worker holding it.

        Returns our handle, or the finished (done/failed) row another worker left. Past `patience`,
        RetryLaterError with the holder's remaining lease: the message goes back to the queue.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            handle = await self.claim(kind, key, lease_seconds=lease_seconds)
            if handle is not None:
                return handle
            current = await self.jobs.get(kind, key)
            if current is not None and current.state in ("done", "failed"):
                return current
            if current is not None and not current.lease_live():
                continue  # released or expired meanwhile: claim again
            if loop.time() >= deadline:
                raise RetryLaterError(f"{kind} {key} is being worked on by another worker", delay=lease_left(current))
            await asyncio.sleep(0.2)  # another worker's lease: poll the row, bounded by the deadline

    async def run(
        self,
        kind: str,
        key: str,
        ctx: FlowContext,
        body: Body[R],
        *,
        result_of: ResultOf[R],
        events: str,
        handle: JobHandle | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Run[R]:
        """Claim (unless `handle` is given) and run `body`; `events` prefixes the audit events (`build`, `push`)."""
        if handle is None:
            handle = await self.claim(kind, key)
        if handle is None:
            return await self._not_claimed(kind, key, ctx, events)
        if handle.job.takeovers >= self.lifecycle.max_takeovers and handle.job.takeovers > 0:
            reason = (
                f"gave up after {handle.job.takeovers} attempts that stopped mid-step (worker killed or timed out); "
                f"last error: {handle.job.last_error or 'none recorded'}"
            )
            await self._fail(handle, ctx, events, reason, "WorkerLost")
            return Run("failed", reason=reason, job=handle.job)
        await ctx.audit(f"{events}.started", attempt=handle.job.attempts, worker=self.worker, **(detail or {}))
        try:
            value = await self._with_heartbeat(handle, body)
        except LostLeaseError as exc:
            if exc.job is None or exc.job == handle.job.ident:
                await ctx.audit(f"{events}.superseded", level="warning", error=str(exc))
                return Run("superseded", reason=str(exc))
            return await self._back_off(handle, ctx, events, TransientError(f"lost the lease on {exc.job}: {exc}"))
        except RetryLaterError as exc:
            return await self._wait(handle, ctx, events, exc)
        except TransientError as exc:
            return await self._back_off(handle, ctx, events, exc)
        except PermanentError as exc:
            await self._fail(handle, ctx, events, str(exc), type(exc).__name__)
            return Run("failed", reason=str(exc), job=handle.job)
        except BaseException as exc:
            # Unknown (a bug, a crash hook, a cancelled worker): give the job back, let the message's retry run it.
            await self._release(handle, f"{type(exc).__name__}: {exc}")
            await ctx.audit(f"{events}.retry", level="warning", error=f"{type(exc).__name__}: {exc}")
            raise
        try:
            done = await handle.complete(result_of(value))
        except LostLeaseError as exc:
            # We stalled past the lease and another worker took over: its record stands, ours is dropped.
            await ctx.audit(f"{events}.superseded", level="warning", error=str(exc))
            return Run("superseded", value=value, reason=str(exc))
        return Run("done", value=value, job=done)

    async def give_up(self, kind: str, key: str, ctx: FlowContext, events: str, reason: str) -> bool:
        """Mark a job failed that the host is about to park in the poison queue; True when it was ours to mark."""
        current = await self.jobs.get(kind, key)
        if current is None or current.state in ("done", "failed") or current.lease_live():
            return False
        try:
            await self.jobs.fail(current, reason, {"error": "GaveUp"})
        except LostLeaseError:
            return False
        await ctx.audit(f"{events}.gave_up", level="error", reason=reason)
        return True

    # --- internals ---------------------------------------------------------------------------------

    async def _with_heartbeat(self, handle: JobHandle, body: Body[R]) -> R:
        task = asyncio.ensure_future(body(handle))
        lost: list[LostLeaseError] = []

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.lifecycle.heartbeat)  # a periodic renewal, not a synchronisation
                try:
                    await handle.renew()
                except LostLeaseError as exc:
                    lost.append(exc)
                    task.cancel()
                    return

        beater = asyncio.ensure_future(beat())
        try:
            return await task
        except asyncio.CancelledError:
            if lost:
                raise lost[0] from None
            raise
        finally:
            if not task.done():
                task.cancel()  # we were cancelled (worker shutting down): do not leave the body running
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater

    async def _not_claimed(self, kind: str, key: str, ctx: FlowContext, events: str) -> Run[R]:
        current = await self.jobs.get(kind, key)
        if current is not None and current.state == "done":
            await ctx.audit(f"{events}.duplicate")
            return Run("duplicate", job=current)
        if current is not None and current.lease_live():
            # Another worker holds it; come back after its lease, when it is done (duplicate) or expired.
            delay = lease_left(current)
            await ctx.audit(f"{events}.busy", level="debug", holder=current.worker, retry_in=round(delay))
            return Run("busy", reason=f"being worked on by another worker ({current.worker})", delay=delay)
        clock = self.lifecycle.clock()
        if current is not None and current.retry_at is not None and current.backing_off(clock):
            # A message while the job waits out a back-off (a duplicate, or a delay the host cut short): it
            # comes back when the back-off is over, so the back-off holds and no message is ever dropped.
            delay = (current.retry_at - clock).total_seconds()
            await ctx.audit(f"{events}.early", level="debug", retry_in=round(delay))
            return Run("early", reason=f"backing off until {current.retry_at}", delay=delay, job=current)
        state = current.state if current else "missing"
        await ctx.audit(f"{events}.skipped", level="warning", job_state=state)
        return Run("skipped", reason=f"job is {state}; replay it to run it again", job=current)

    async def _wait(self, handle: JobHandle, ctx: FlowContext, events: str, exc: RetryLaterError) -> Run[R]:
        """A wait the flow asked for (throttled, another holder, a settle time): not counted as a failure."""
        retry_at = self.lifecycle.clock() + timedelta(seconds=exc.delay)
        await self._release(handle, f"{type(exc).__name__}: {exc}", retry_at=retry_at)
        await ctx.audit(f"{events}.wait", level="warning", error=str(exc), delay=round(exc.delay, 1))
        return Run("wait", reason=str(exc), delay=exc.delay, job=handle.job)

    async def _back_off(self, handle: JobHandle, ctx: FlowContext, events: str, exc: TransientError) -> Run[R]:
        job = handle.job
        clock = self.lifecycle.clock()
        first = job.first_failure or clock
        failures = job.failures + 1
        error = f"{type(exc).__name__}: {exc}"
        elapsed = (clock - first).total_seconds()
        if elapsed >= self.lifecycle.horizon:
            reason = f"gave up after {failures} attempts over {_span(elapsed)}; last error: {exc}"
            await self._fail(handle, ctx, events, reason, type(exc).__name__)
            return Run("failed", reason=reason, job=handle.job)
        delay = self.lifecycle.backoff(failures)
        if isinstance(exc, UnknownOutcomeError):
            delay = max(delay, handle.settle_left(handle.open_intent() or {"at": clock.isoformat()}))
        retry_at = clock + timedelta(seconds=delay)
        await self._release(handle, error, retry_at=retry_at, failures=failures, first_failure=first)
        await ctx.audit(f"{events}.retry", level="warning", error=error, attempt=failures, delay=round(delay, 1))
        return Run("retry", reason=error, delay=delay, job=handle.job)

    async def _release(self, handle: JobHandle, error: str, **changes: Any) -> None:
        await handle.release(error, **changes)

    async def _fail(self, handle: JobHandle, ctx: FlowContext, events: str, reason: str, error: str) -> None:
        await handle.fail(reason, error)
        await ctx.audit(f"{events}.failed", level="error", reason=reason, error=error)


def lease_left(job: Job | None) -> float:
    """Seconds until another worker's lease on `job` runs out (at least 1): when to come back."""
    if job is None or job.lease_until is None:
        return 1.0
    return max(1.0, (job.lease_until - now()).total_seconds())


def _with_lease(lifecycle: Lifecycle, lease: float) -> Lifecycle:
    return dataclasses.replace(lifecycle, lease_seconds=lease)


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
