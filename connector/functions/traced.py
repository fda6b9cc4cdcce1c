"""The function bodies wrapped in one telemetry operation each, for the function app and the local runner.

Dimensions are ids and outcomes only (deal id, record key, queue, HTTP status): never a body.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector import telemetry
from connector.functions.http import HttpIn, HttpOut

if TYPE_CHECKING:
    from connector.flows.poll import PollResult


def _message_ids(text: str) -> dict[str, Any]:
    """deal id / record key from a queue message, for the record of an attempt that raised."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # the handler parks what it cannot read
        return {}
    if not isinstance(body, dict):
        return {}
    ids = {k: body.get(k) for k in ("deal_id", "entity", "key", "legal_entity", "reason")}
    return {k: v for k, v in ids.items() if isinstance(v, int | str) and not isinstance(v, bool)}


def _waited(inserted: datetime | None) -> float | None:
    """Seconds between the message's enqueue (the win, for a webhook) and now."""
    if inserted is None:
        return None
    if inserted.tzinfo is None:
        inserted = inserted.replace(tzinfo=UTC)
    return round((datetime.now(UTC) - inserted).total_seconds(), 1)


async def order_message(text: str, *, dequeue_count: int = 1, inserted: datetime | None = None, **kw: Any) -> Any:
    from connector.functions.worker import handle_order_message

    async with telemetry.operation("order.build", dequeue_count=dequeue_count, **_message_ids(text)) as op:
        result = await handle_order_message(text, dequeue_count=dequeue_count, **kw)
        op.outcome = result.outcome if result is not None else "parked"
        if result is not None:
            op.set(deal_id=result.deal_id, order_number=result.order_number, reason=_short(result.reason))
            if result.outcome in ("created", "adopted"):
                op.set(queued_to_done_s=_waited(inserted))
        return result


async def master_message(text: str, *, dequeue_count: int = 1, inserted: datetime | None = None, **kw: Any) -> Any:
    from connector.functions.worker import handle_master_message

    async with telemetry.operation("master.push", dequeue_count=dequeue_count, **_message_ids(text)) as op:
        result = await handle_master_message(text, dequeue_count=dequeue_count, **kw)
        op.outcome = result.outcome if result is not None else "parked"
        if result is not None:
            op.set(entity=result.entity, key=result.key, legal_entity=result.legal_entity, reason=_short(result.reason))
        return result


async def pipedrive_webhook(req: HttpIn) -> HttpOut:
    from connector.functions.webhook import handle_pipedrive_webhook

    async with telemetry.operation("webhook") as op:
        out = await handle_pipedrive_webhook(req)
        op.outcome = str(out.status)
        if out.status == 200:
            body = out.json
            op.set(status=body.get("status"), deal_id=body.get("deal_id"))
        return out


async def poll() -> PollResult:
    """One poll, then a sample of the queue depths (the alert 'no successful poll' reads these)."""
    from connector.functions.timer import run_poll

    async with telemetry.operation("poll") as op:
        result = await run_poll()
        op.set(seen=result.seen, enqueued=result.enqueued)
    await sample_queues()
    return result


async def sample_queues() -> None:
    """Depth of every queue and poison queue, as one `queues` record. Never raises (a sample may be lost)."""
    from connector.runtime import get_runtime

    try:
        rt = await get_runtime()
        q = rt.queues
        record: dict[str, Any] = {
            "op": "queues",
            "outcome": "ok",
            "order_depth": await q.depth(q.order_queue),
            "order_poison_depth": await q.poison_depth(q.order_queue),
            "master_depth": await q.depth(q.master_queue),
            "master_poison_depth": await q.poison_depth(q.master_queue),
        }
    except Exception as exc:  # a lost sample must not fail the timer
        record = {"op": "queues", "outcome": "error", "error": type(exc).__name__}
    telemetry.emit(record)


def _short(text: str | None) -> str | None:
    return None if text is None else text[:300]
