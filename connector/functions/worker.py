"""Queue trigger bodies for `order-build` and `master-push`: decode, run the flow, and map outcomes
to the host's retry rules.

Return = the message is done (deleted); a flow that must come back later (back-off after a transient
error, a wait, another worker's lease) has first sent a new message with a visibility delay. Raise (an
unknown error) = the host retries it after the visibility timeout, and after `maxDequeueCount` moves it
to the poison queue; on that last attempt its job is marked failed first, so `status` shows it and
`replay --failed` brings it back.

The flow's dependencies come from the runtime (`order_deps()`, `master_deps()`), which opens the API
clients on first use. A transient failure to open them (the secret store did not answer) backs the job
off like a failed run (`_back_off_unopened`), so an outage at a cold start waits and recovers by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from connector.errors import RetryLaterError, TransientError
from connector.flows.context import Checkpoint, FlowContext
from connector.flows.masters import PushResult, push_master
from connector.flows.orders import OrderResult, build_order_for_deal
from connector.flows.runner import JobHandle, Run
from connector.queues import MalformedMessage, MasterPush, OrderBuild, decode_message
from connector.runtime import Runtime, get_runtime
from connector.state.audit import Level

log = logging.getLogger(__name__)
M = TypeVar("M", OrderBuild, MasterPush)
R = TypeVar("R", OrderResult, PushResult)


async def handle_order_message(
    text: str, *, dequeue_count: int = 1, checkpoint: Checkpoint | None = None
) -> OrderResult | None:
    rt = await get_runtime()

    async def build(message: OrderBuild) -> OrderResult:
        try:
            deps = await rt.order_deps()
        except TransientError as exc:
            run = await _back_off_unopened(rt, message, exc, "build")
            return OrderResult(message.deal_id, run.status, reason=run.reason, delay=run.delay)  # type: ignore[arg-type]
        return await build_order_for_deal(deps, message, checkpoint=checkpoint)

    result = await _handle(
        rt, text, OrderBuild, rt.queues.order_queue, build, requeued_event="build.requeued", dequeue_count=dequeue_count
    )
    if result is not None:
        log.info("deal %s: %s %s", result.deal_id, result.outcome, result.order_number or result.reason or "")
    return result


async def handle_master_message(
    text: str, *, dequeue_count: int = 1, checkpoint: Checkpoint | None = None
) -> PushResult | None:
    """The same rules as the order queue, for one master record."""
    rt = await get_runtime()

    async def push(message: MasterPush) -> PushResult:
        try:
            deps = await rt.master_deps()
        except TransientError as exc:
            run = await _back_off_unopened(rt, message, exc, "push")
            return PushResult(message.entity, message.key, message.legal_entity.lower(), run.status,  # type: ignore[arg-type]
                              reason=run.reason, delay=run.delay)  # fmt: skip
        return await push_master(deps, message, checkpoint=checkpoint)

    result = await _handle(
        rt, text, MasterPush, rt.queues.master_queue, push, requeued_event="push.requeued", dequeue_count=dequeue_count
    )
    if result is not None:
        log.info("%s %s: %s %s", result.entity, result.key, result.outcome, result.target_id or result.reason or "")
    return result


async def _handle(
    rt: Runtime,
    text: str,
    expected: type[M],
    queue: str,
    run: Callable[[M], Awaitable[R]],
    *,
    requeued_event: str,
    dequeue_count: int,
) -> R | None:
    try:
        message: Any = decode_message(text)
    except MalformedMessage as exc:
        # Retrying cannot fix a malformed message: park it (verbatim) and audit, instead of 5 tries.
        await rt.queues.move_aside(text, str(exc), queue=queue)
        log.error("malformed message parked in %s-poison: %s", queue, exc)
        return None
    if not isinstance(message, expected):
        await rt.queues.move_aside(text, f"{message.kind} message on queue {queue}", queue=queue)
        return None
    try:
        result = await run(message)
    except RetryLaterError as exc:
        await _requeue(rt, message, exc.delay, str(exc), requeued_event, dequeue_count, "warning")
        return None
    except BaseException as exc:
        if dequeue_count >= rt.settings.max_dequeue_count:
            # The host parks the message in the poison queue after this attempt: make that visible on the job.
            reason = f"gave up after {dequeue_count} attempts: {type(exc).__name__}: {exc}"
            ctx = FlowContext(message.subject, message.correlation_id, rt.state.audit)
            await rt.runner.give_up(message.job_kind, message.job_key, ctx, requeued_event.split(".")[0], reason)
        raise
    if result.requeue:
        # A back-off, a wait or another worker's lease: the message comes back later instead of sleeping here.
        # Routine when the run was only early or busy (the runner audited those at debug): not a warning then.
        level: Level = "debug" if result.outcome in ("busy", "early") else "warning"
        await _requeue(rt, message, result.delay, result.reason or result.outcome, requeued_event, dequeue_count, level)
    return result


async def _back_off_unopened(
    rt: Runtime, message: OrderBuild | MasterPush, exc: TransientError, events: str
) -> Run[None]:
    """The job's run, failed with the error that kept its clients from opening: it backs off (to the outage
    horizon) exactly as a flow's own transient failure does, instead of spending the message's host retries."""
    ctx = FlowContext(message.subject, message.correlation_id, rt.state.audit)

    async def body(handle: JobHandle) -> None:
        raise exc

    return await rt.runner.run(
        message.job_kind, message.job_key, ctx, body, result_of=lambda _: {}, events=events,
        detail={"reason": message.reason},
    )  # fmt: skip


async def _requeue(
    rt: Runtime, message: Any, delay: float, why: str, event: str, dequeue_count: int, level: Level
) -> None:
    await rt.queues.requeue(message, delay * rt.lifecycle.requeue_scale)
    await rt.state.audit.append(
        message.subject,
        event,
        correlation_id=message.correlation_id,
        level=level,
        detail={"delay": round(delay, 1), "error": why, "dequeue_count": dequeue_count},
    )
