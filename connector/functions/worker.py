"""Queue trigger bodies for `order-build` and `master-push`: decode, run the flow, and map outcomes
to the host's retry rules.

Return = the message is done (deleted). Raise = the host retries it after the visibility timeout,
and after `maxDequeueCount` moves it to the poison queue, where `status` shows it and `replay` drains it.
"""

from __future__ import annotations

import logging

from connector.errors import RetryLaterError
from connector.flows.context import Checkpoint
from connector.flows.masters import PushResult, push_master
from connector.flows.orders import OrderResult, build_order_for_deal
from connector.queues import MalformedMessage, MasterPush, OrderBuild, decode_message
from connector.runtime import get_runtime

log = logging.getLogger(__name__)


async def handle_order_message(
    text: str, *, dequeue_count: int = 1, checkpoint: Checkpoint | None = None
) -> OrderResult | None:
    rt = await get_runtime()
    try:
        message = decode_message(text)
    except MalformedMessage as exc:
        # Retrying cannot fix a malformed message: park it (verbatim) and audit, instead of 5 tries.
        await rt.queues.move_aside(text, str(exc), queue=rt.queues.order_queue)
        log.error("malformed order message parked in poison queue: %s", exc)
        return None
    if not isinstance(message, OrderBuild):
        await rt.queues.move_aside(text, f"{message.kind} message on the order queue", queue=rt.queues.order_queue)
        return None
    try:
        result = await build_order_for_deal(rt, message, checkpoint=checkpoint)
    except RetryLaterError as exc:
        # A long wait (throttling, another worker's lease): re-queue with a delay instead of sleeping.
        await rt.queues.requeue(message, exc.delay)
        await rt.state.audit.append(
            f"deal-{message.deal_id}",
            "build.requeued",
            correlation_id=message.correlation_id,
            level="warning",
            detail={"delay": round(exc.delay, 1), "error": str(exc), "dequeue_count": dequeue_count},
        )
        return None
    log.info("deal %s: %s %s", result.deal_id, result.outcome, result.order_number or result.reason or "")
    return result


async def handle_master_message(
    text: str, *, dequeue_count: int = 1, checkpoint: Checkpoint | None = None
) -> PushResult | None:
    """Queue trigger body for `master-push`: the same rules as the order queue, for one master record."""
    rt = await get_runtime()
    queue = rt.queues.master_queue
    try:
        message = decode_message(text)
    except MalformedMessage as exc:
        await rt.queues.move_aside(text, str(exc), queue=queue)
        log.error("malformed master message parked in poison queue: %s", exc)
        return None
    if not isinstance(message, MasterPush):
        await rt.queues.move_aside(text, f"{message.kind} message on the master queue", queue=queue)
        return None
    try:
        result = await push_master(rt, message, checkpoint=checkpoint)
    except RetryLaterError as exc:
        await rt.queues.requeue(message, exc.delay)
        await rt.state.audit.append(
            message.subject,
            "push.requeued",
            correlation_id=message.correlation_id,
            level="warning",
            detail={"delay": round(exc.delay, 1), "error": str(exc), "dequeue_count": dequeue_count},
        )
        return None
    log.info("%s: %s %s", message.subject, result.outcome, result.target_id or result.reason or "")
    return result
