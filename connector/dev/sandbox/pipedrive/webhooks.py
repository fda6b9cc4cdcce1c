"""Webhook delivery as Pipedrive does it (pipedrive-api.md section 8).

v2 payloads (`meta`/`data`/`previous`, custom fields as typed objects) or v1 payloads for version "1.0"
webhooks; Basic auth from http_auth_user/password; success = any 2xx; failure = non-2xx or a 10 s
timeout; then 3 more attempts after 3, 30 and 150 s (times `time_scale` for tests). Not modelled: the
ban counter and the 3-day auto-delete. Faults: drop (the event is lost) or duplicate the next N events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp

from .customfields import flatten_v1, webhook_v2
from .store import Event, Store

RETRY_DELAYS = (3.0, 30.0, 150.0)
TIMEOUT = 10.0
V1_ACTIONS = {"create": "added", "change": "updated", "delete": "deleted"}


def _v1_time(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and "T" in value:
        return value[:10] + " " + value[11:19]
    return value


def to_v1(store: Store, entity: str, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The v1 shape of a stored v2 record: flat custom fields, `user_id`, `active`, v1 timestamps."""
    if record is None:
        return None
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "custom_fields":
            continue
        out["user_id" if key == "owner_id" else key] = _v1_time(value)
    out["active"] = not record.get("is_deleted", False)
    out.update(flatten_v1(store.fields.get(entity, {}), record.get("custom_fields") or {}))
    return out


class Dispatcher:
    def __init__(self, store: Store, *, time_scale: float = 1.0, host: str = "sandbox.pipedrive.local") -> None:
        self.store = store
        self.time_scale = time_scale
        self.host = host
        self.deliveries: list[dict[str, Any]] = []
        self.drop_next = 0
        self.duplicate_next = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.timeout = TIMEOUT  # the documented 10 s; tests may shorten it to exercise the timeout path
        store.listeners.append(self.on_event)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.deliveries.clear()
        self.drop_next = self.duplicate_next = 0

    # ---- events -> payloads ----------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        for hook in list(self.store.webhooks.values()):
            if not hook["is_active"] or hook["event_object"] not in (event.entity, "*"):
                continue
            if hook["event_action"] not in (event.action, V1_ACTIONS[event.action], "*"):
                continue
            event_id = str(uuid.uuid4())
            if self.drop_next > 0:
                self.drop_next -= 1
                self._record(hook, event_id, 1, None, "dropped by fault injection", None)
                continue
            copies = 1
            if self.duplicate_next > 0:
                self.duplicate_next -= 1
                copies = 2
            for _ in range(copies):
                self._spawn(self._deliver(hook, event, event_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def payload(self, hook: dict[str, Any], event: Event, event_id: str, attempt: int) -> dict[str, Any]:
        user = self.store.default_user
        if hook["version"] == "1.0":
            return self._payload_v1(hook, event, event_id, attempt, user)
        defs = self.store.fields.get(event.entity, {})

        def shape(record: dict[str, Any] | None) -> dict[str, Any] | None:
            if record is None:
                return None
            out = copy.deepcopy(record)
            if "custom_fields" in out:
                out["custom_fields"] = webhook_v2(defs, out["custom_fields"])
            if "visible_to" in out and out["visible_to"] is not None:
                out["visible_to"] = str(out["visible_to"])  # a string in webhook v2 examples
            return out

        meta = {
            "action": event.action, "entity": event.entity, "company_id": str(user["company_id"]),
            "correlation_id": event_id, "entity_id": str(event.entity_id), "id": event_id, "is_bulk_edit": False,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "type": "general",
            "user_id": str(event.user_id), "version": "2.0", "webhook_id": str(hook["id"]),
            "webhook_owner_id": str(hook["owner_id"]), "change_source": event.change_source, "attempt": attempt,
            "host": self.host, "permitted_user_ids": [str(user["id"])],
        }  # fmt: skip
        return {"meta": meta, "data": shape(event.data), "previous": shape(event.previous)}

    def _payload_v1(
        self, hook: dict[str, Any], event: Event, event_id: str, attempt: int, user: dict[str, Any]
    ) -> dict[str, Any]:
        action = V1_ACTIONS[event.action]
        current = to_v1(self.store, event.entity, event.data)
        previous = None
        if event.action == "change" and event.data is not None and event.previous is not None:
            before = {**event.data, **event.previous}
            before["custom_fields"] = {**event.data.get("custom_fields", {}), **event.previous.get("custom_fields", {})}
            previous = to_v1(self.store, event.entity, before)  # v1 sends both full objects
        elif event.action == "delete":
            previous = to_v1(self.store, event.entity, event.previous)
        now = time.time()
        filters: dict[str, list[int]] = {"current": [], "previous": []}
        meta = {
            "v": 1, "action": action, "object": event.entity, "change_source": event.change_source,
            "id": event.entity_id, "company_id": user["company_id"], "user_id": event.user_id, "host": self.host,
            "timestamp": int(now), "timestamp_micro": int(now * 1_000_000), "permitted_user_ids": [user["id"]],
            "trans_pending": False, "is_bulk_update": False, "pipedrive_service_name": False,
            "matches_filters": filters, "webhook_id": str(hook["id"]),
        }  # fmt: skip
        return {
            "v": 1, "matches_filters": filters, "meta": meta, "retry": attempt - 1, "current": current,
            "previous": previous, "event": f"{action}.{event.entity}",
        }  # fmt: skip

    # ---- delivery --------------------------------------------------------------------------------
    async def _deliver(self, hook: dict[str, Any], event: Event, event_id: str) -> None:
        headers = {"User-Agent": "Pipedrive-Webhook"}  # UNCONFIRMED (Prismatic sample)
        if hook.get("http_auth_user"):
            raw = f"{hook['http_auth_user']}:{hook.get('http_auth_password') or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        for attempt in range(1, len(RETRY_DELAYS) + 2):
            if attempt > 1:
                await asyncio.sleep(RETRY_DELAYS[attempt - 2] * self.time_scale)  # the documented retry schedule
            body = self.payload(hook, event, event_id, attempt)
            status: int | None = None
            error: str | None = None
            assert self._session is not None, "Dispatcher.start() was not awaited"
            try:
                async with self._session.post(
                    hook["subscription_url"],
                    json=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response:
                    status = response.status
            except TimeoutError:
                error = f"timeout after {self.timeout:g}s"
            except aiohttp.ClientError as exc:
                error = f"{type(exc).__name__}: {exc}"
            delivered = status is not None and 200 <= status < 300
            self._record(hook, event_id, attempt, status, error, body)
            hook["last_delivery_time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            hook["last_http_status"] = status
            if delivered:
                return

    def _record(
        self, hook: dict[str, Any], event_id: str, attempt: int, status: int | None, error: str | None, body: Any
    ) -> None:
        self.deliveries.append(
            {
                "webhook_id": hook["id"], "url": hook["subscription_url"], "version": hook["version"],
                "event_id": event_id, "attempt": attempt, "status": status, "error": error,
                "ok": status is not None and 200 <= status < 300, "dropped": error == "dropped by fault injection",
                "body": body,
            }
        )  # fmt: skip
        self._spawn(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self,
        count: int,
        timeout: float,  # noqa: ASYNC109
        *,
        ok_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Wait (on a condition, no polling) until `count` delivery attempts are recorded."""

        def enough() -> bool:
            return len([d for d in self.deliveries if d["ok"] or not ok_only]) >= count

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(enough), timeout)
        return list(self.deliveries)
