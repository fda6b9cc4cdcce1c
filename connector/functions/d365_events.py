"""POST /api/d365/events (function-key auth): D365 business events and data events -> master pushes.

Parse everything first, so a bad body (not JSON, not an event, a change event without its key field)
is a 400 with nothing queued. The activation test event is recognised first and acknowledged. Which
business events are changes, and their key fields, come from the mapping's `events` section. Each
change event queues a push of its record with the event's id as correlation id; an id seen before is
acknowledged without queueing again (D365 retries deliveries it thinks failed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from connector.d365.data_events import CHANGE_MESSAGES, DATA_EVENT_ENTITIES, DELETE_MESSAGE, DataEvent
from connector.d365.events import BusinessEvent, InvalidEventError, parse_events
from connector.flows.master_diff import legal_entities
from connector.functions.http import HttpIn, HttpOut, guarded, json_error, json_response
from connector.inputs import BadInput
from connector.runtime import Runtime, get_runtime
from connector.state.jobs import EVENT_JOB

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 500  # per delivery; F&O sends one per POST (bundling to HTTPS endpoints is UNCONFIRMED)
CONCURRENCY = 32
SUBJECT = "d365-events"
# The standard catalog has no customer/product "changed" business events: the custom events the D365 admin
# activates are named in the mapping file (`events`), with CustomerChangedBusinessEvent/CustomerAccount and
# ReleasedProductChangedBusinessEvent/ItemNumber as defaults. Data events: see _classify_data_event.
HOW_TO_CONFIGURE = (
    "configure a business event for customer/released product changes instead (docs/admin-d365.md, "
    "'Master data events') and name it in the mapping file's events section"
)


@dataclass(frozen=True)
class _Push:
    event: BusinessEvent | DataEvent
    entity: Literal["product", "customer"]
    key: str
    legal_entity: str


@guarded
async def handle_d365_events(req: HttpIn) -> HttpOut:
    if len(req.body) > MAX_BODY_BYTES:
        return json_error(413, f"event body is {len(req.body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        events = parse_events(req.body)
        if len(events) > MAX_EVENTS:
            raise InvalidEventError(f"{len(events)} events in one delivery; the limit is {MAX_EVENTS}")
        rt = await get_runtime()
        plan = [_classify(rt, event, index) for index, event in enumerate(events)]
    except InvalidEventError as exc:
        raise BadInput(str(exc), lines=exc.lines) from None
    # Events are independent (each has its own dedupe row): handled concurrently, reported in order.
    # Storage trouble is a 503 (guarded): D365 delivers again, and the EventId dedupe keeps that harmless.
    limit = asyncio.Semaphore(CONCURRENCY)

    # The same event twice in one delivery: only its first copy is acted on (concurrent copies would race
    # for the dedupe row, and which one "won" would vary); the others are reported as duplicates.
    firsts: set[str] = set()
    repeated = []
    for event, action in zip(events, plan, strict=True):
        key = event.dedupe_key if isinstance(action, _Push) else ""
        repeated.append(bool(key) and key in firsts)
        firsts.add(key)

    async def one(event: BusinessEvent | DataEvent, action: _Push | str, again: bool) -> dict[str, object]:
        if again:
            await rt.state.audit.append(SUBJECT, "event.duplicate", correlation_id=event.dedupe_key)
            return {"event_id": event.event_id, "status": "duplicate"}
        async with limit:
            return {"event_id": event.event_id, "status": await _act(rt, event, action)}

    results = await asyncio.gather(
        *(one(event, action, again) for event, action, again in zip(events, plan, repeated, strict=True))
    )
    return json_response(200, {"events": list(results)})


async def _act(rt: Runtime, event: BusinessEvent | DataEvent, action: _Push | str) -> str:
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


def _classify(rt: Runtime, event: BusinessEvent | DataEvent, index: int) -> _Push | str:
    """A push to queue, "test", or why the event is ignored; InvalidEventError when it is unusable."""
    if isinstance(event, DataEvent):
        return _classify_data_event(rt, event, index)
    if event.is_test:
        return "test"
    route = rt.mapping.events.route(event.business_event_id)
    if route is None:
        return "not a master-data event (mapping: events)"
    entity, field_name = route
    value = event.fields.get(field_name)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidEventError(
            f"{event.business_event_id} without a usable {field_name}",
            lines=[
                f"item {index}: {field_name}: expected a non-empty string of at most 200 characters "
                f"(the key field the mapping's events section names for {event.business_event_id})"
            ],
        )
    return _scoped(rt, event, entity, value, event.legal_entity)


def _classify_data_event(rt: Runtime, event: DataEvent, index: int) -> _Push | str:
    """Data events of CustomersV3/ReleasedProductsV2 push the record their attributes name (api-facts D365 §8).

    A delete is acknowledged (Pipedrive records are never deleted by the connector). A change whose
    attributes do not carry the key (an update's Target may hold only the changed fields) cannot be
    acted on: 400, so D365 keeps it in its Errors tab, with how to set up a business event instead.
    """
    known = DATA_EVENT_ENTITIES.get(event.entity_name)
    if known is None:
        return f"data event of {event.entity_name[:60]}, not a master-data entity"
    if event.message_name == DELETE_MESSAGE:
        return "deletes are not pushed to Pipedrive"
    entity, attribute = known
    value = event.attributes.get(attribute)
    if event.message_name not in CHANGE_MESSAGES or not isinstance(value, str) or not value.strip():
        problem = (
            f"item {index}: data event {event.message_name[:40]} of {event.entity_name} without {attribute}; "
            f"the connector cannot tell which record changed: {HOW_TO_CONFIGURE}"
        )
        raise InvalidEventError(problem, lines=[problem])
    return _scoped(rt, event, "customer" if entity == "customer" else "product", value[:200], event.legal_entity)


def _scoped(
    rt: Runtime, event: BusinessEvent | DataEvent, entity: Literal["product", "customer"], key: str, company: str
) -> _Push | str:
    legal_entity = (company or rt.mapping.legal_entity.default).lower()
    if legal_entity not in legal_entities(rt.mapping):
        # Activation for "all companies" also sends other companies' changes: the mapping says which are synced.
        return f"legal entity {legal_entity[:20]} is not in the mapping"
    return _Push(event, entity, key, legal_entity)


async def _enqueue(rt: Runtime, push: _Push) -> str:
    jobs = rt.state.jobs
    seen = await jobs.guard_enqueue(
        EVENT_JOB, push.event.dedupe_key, correlation_id=push.event.dedupe_key, reason="event"
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
