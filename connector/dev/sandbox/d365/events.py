"""Business events: the documented envelope POSTed to a configured HTTPS endpoint (reference section 8).

Delivery follows the "Business events parameters" defaults: 3 retries 1000 ms apart and a 10 s HTTPS
timeout, all scaled by `time_factor` so tests stay fast. On activation the test event
`BusinessEventsTestEndpointContract` is sent first. Events of one transaction are sent after it commits.
What counts as success is UNCONFIRMED; any 2xx is taken as delivered.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel

TEST_EVENT_ID = "BusinessEventsTestEndpointContract"
# The standard catalog has no customer/product change events (reference section 8): these are the custom
# business events the sandbox emits for CustomersV3 / ReleasedProductsV2 changes.
DEFAULT_EVENT_IDS = {
    "CustomersV3": "CustomerChangedBusinessEvent",
    "ReleasedProductsV2": "ReleasedProductChangedBusinessEvent",
}
EVENT_FIELDS = {"CustomersV3": ("CustomerAccount",), "ReleasedProductsV2": ("ItemNumber",)}


class EventDelivery(BaseModel):
    payload: dict[str, Any]
    attempts: int
    status: int | None  # last HTTP status, None when no answer (timeout, refused)
    delivered: bool
    error: str | None = None


def envelope(event_id: str, legal_entity: str, control_number: int, fields: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "BusinessEventId": event_id,
        "BusinessEventLegalEntity": legal_entity,
        "ContextRecordSubject": "",
        "ControlNumber": control_number,
        "EventId": str(uuid.uuid4()).upper(),
        "EventTime": f"/Date({int(now.timestamp() * 1000)})/",
        "EventTimeIso8601": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
        "InitiatingUserAADObjectId": "{" + str(uuid.uuid4()).upper() + "}",
        "MajorVersion": 0,
        "MinorVersion": 0,
        "ParentContextRecordSubjects": [],
        **fields,
    }
    return dict(sorted(payload.items()))


class EventDispatcher:
    def __init__(self, *, time_factor: float = 1.0, verify: ssl.SSLContext | bool = True) -> None:
        self.time_factor = time_factor
        self.verify = verify
        self.endpoint: str | None = None
        self.event_ids = dict(DEFAULT_EVENT_IDS)
        self.retries = 3
        self.retry_wait = 1.0
        self.timeout = 10.0
        self.deliveries: list[EventDelivery] = []
        self._control = 5637144576
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def _next_control_number(self) -> int:
        # Upward-increasing but not sequential (reference section 8).
        self._control += random.randint(1, 4)
        return self._control

    async def activate(
        self, url: str | None, *, legal_entity: str = "", verify: ssl.SSLContext | bool | None = None
    ) -> None:
        """Point events at `url` (None disables them); F&O sends its test event on activation.

        `verify` trusts the endpoint's certificate (default: the system store plus the sandbox CA).
        """
        self.endpoint = url
        if verify is not None and verify is not self.verify:
            self.verify = verify
            if self._client is not None:
                await self._client.aclose()
                self._client = None
        if url:
            test = envelope(TEST_EVENT_ID, legal_entity, self._next_control_number(), {})
            self._spawn(test)

    def emit_change(self, entity_set: str, change: str, record: dict[str, Any]) -> None:
        event_id = self.event_ids.get(entity_set)
        if not self.endpoint or not event_id:
            return
        fields = {f: record.get(f) for f in EVENT_FIELDS.get(entity_set, ())}
        fields["ChangeType"] = change
        company = str(record.get("dataAreaId", "")).lower()
        self._spawn(envelope(event_id, company, self._next_control_number(), fields))

    def _spawn(self, payload: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        url = self.endpoint
        if not url:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(verify=self.verify)
        status: int | None = None
        error: str | None = None
        attempts = 0
        for attempt in range(self.retries + 1):
            attempts = attempt + 1
            try:
                response = await self._client.post(url, json=payload, timeout=self.timeout * self.time_factor)
                status, error = response.status_code, None
                if 200 <= status < 300:
                    break
            except httpx.HTTPError as exc:
                status, error = None, type(exc).__name__
            if attempt < self.retries:
                await asyncio.sleep(self.retry_wait * self.time_factor)  # the product's documented retry wait
        delivered = status is not None and 200 <= status < 300
        async with self._changed:
            self.deliveries.append(
                EventDelivery(payload=payload, attempts=attempts, status=status, delivered=delivered, error=error)
            )
            self._changed.notify_all()

    async def wait_for(self, n: int, timeout: float) -> list[EventDelivery]:  # noqa: ASYNC109 - public API shape
        """Wait until `n` deliveries finished (delivered or given up); raises TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.deliveries) >= n)
            return list(self.deliveries)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
