"""POST /api/d365/events (function-key auth): D365 business events -> master pushes.

Parse everything first, so a bad body (not JSON, not a business event, a change event without its
key field) is a 400 with nothing queued. The activation test event is acknowledged and audited. Each
change event queues a push of its record with the event's EventId as correlation id; an EventId seen
before is acknowledged without queueing again (D365 retries deliveries it thinks failed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from connector.d365.events import BusinessEvent, InvalidEventError, parse_business_events
from connector.flows.master_diff import legal_entities
from connector.functions.http import HttpIn, HttpOut, guarded, json_error, json_response
from connector.inputs import BadInput
from connector.runtime import Runtime, get_runtime

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 500  # per delivery; F&O sends one per POST (bundling to HTTPS endpoints is UNCONFIRMED)
CONCURRENCY = 32
SUBJECT = "d365-events"
EVENT_JOB_KIND = "d365-event"  # a job row per EventId: the dedupe of redelivered events
# The standard catalog has no customer/product "changed" business events: these are the custom events
# (reference section 8) the D365 admin activates; their ids and key fields are UNCONFIRMED beyond that.
MASTER_EVENTS: dict[str, tuple[Literal["product", "customer"], str]] = {
    "ReleasedProductChangedBusinessEvent": ("product", "ItemNumber"),
    "CustomerChangedBusinessEvent": ("customer", "CustomerAccount"),
}


@dataclass(frozen=True)
class _Push:
    event: BusinessEvent
    entity: Literal["product", "customer"]
    key: str
    legal_entity: str


@guarded
async def handle_d365_events(req: HttpIn) -> HttpOut:
    if len(req.body) > MAX_BODY_BYTES:
        return json_error(413, f"event body is {len(req.body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        events = parse_business_events(req.body)
        if len(events) > MAX_EVENTS:
            raise InvalidEventError(f"{len(events)} events in one delivery; the limit is {MAX_EVENTS}")
        rt = await get_runtime()
        plan = [_classify(rt, event, index) for index, event in enumerate(events)]
    except InvalidEventError as exc:
        raise BadInput(str(exc), lines=exc.lines) from None
    # Events are independent (each has its own dedupe row): handled concurrently, reported in order.
    # Storage trouble is a 503 (guarded): D365 delivers again, and the EventId dedupe keeps that harmless.
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(event: BusinessEvent, action: _Push | str) -> dict[str, object]:
        async with limit:
            return {"event_id": event.event_id, "status": await _act(rt, event, action)}

    results = await asyncio.gather(*(one(event, action) for event, action in zip(events, plan, strict=True)))
    return json_response(200, {"events": list(results)})


async def _act(rt: Runtime, event: BusinessEvent, action: _Push | str) -> str:
    if isinstance(action, _Push):
        return await _enqueue(rt, action)
    if action == "test":
        await rt.state.audit.append(
            SUBJECT, "event.test", correlation_id=event.dedupe_key, detail={"legal_entity": event.legal_entity}
        )
        return "test"
    # A valid event we do not act on is acknowledged, never refused (D365 would retry it).
    await rt.state.audit.append(
        SUBJECT,
        "event.ignored",
        correlation_id=event.dedupe_key,
        level="debug",
        detail={"business_event_id": event.business_event_id[:100], "why": action},
    )
    return "ignored"


def _classify(rt: Runtime, event: BusinessEvent, index: int) -> _Push | str:
    """A push to queue, "test", or why the event is ignored; InvalidEventError when it is unusable."""
    if event.is_test:
        return "test"
    known = MASTER_EVENTS.get(event.business_event_id)
    if known is None:
        return "not a master-data event"
    entity, field_name = known
    value = event.fields.get(field_name)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidEventError(
            f"{event.business_event_id} without a usable {field_name}",
            lines=[f"item {index}: {field_name}: expected a non-empty string of at most 200 characters"],
        )
    legal_entity = (event.legal_entity or rt.mapping.legal_entity.default).lower()
    if legal_entity not in legal_entities(rt.mapping):
        # Activation for "all companies" also sends other companies' changes: the mapping says which are synced.
        return f"legal entity {legal_entity[:20]} is not in the mapping"
    return _Push(event, entity, value, legal_entity)


async def _enqueue(rt: Runtime, push: _Push) -> str:
    jobs = rt.state.jobs
    seen = await jobs.guard_enqueue(
        EVENT_JOB_KIND, push.event.dedupe_key, correlation_id=push.event.dedupe_key, reason="event"
    )
    if not seen.enqueue:
        await rt.state.audit.append(SUBJECT, "event.duplicate", correlation_id=push.event.dedupe_key)
        return "duplicate"
    try:
        queued = await rt.queues.enqueue_master(
            push.entity, push.key, push.legal_entity, reason="event", correlation_id=push.event.dedupe_key
        )
    except BaseException:
        await jobs.undo_enqueue(seen)  # so D365's redelivery is not taken for a duplicate
        raise
    await jobs.complete(seen.job, {"entity": push.entity, "key": push.key, "legal_entity": push.legal_entity})
    return "queued" if queued else "already_queued"
