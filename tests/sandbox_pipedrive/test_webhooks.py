"""Webhook registration and delivery: v2 and v1 payloads, Basic auth, retries, timeouts, faults."""

from __future__ import annotations

import base64

import httpx
import pytest

from connector.dev.sandbox.pipedrive import PipedriveSandbox

from .conftest import DEAL_CHANNELS, DEAL_FREIGHT, DEAL_TERMS, Receiver


async def _register(sandbox: PipedriveSandbox, url: str, **extra: str) -> dict[str, object]:
    body = {"subscription_url": url, "event_action": "*", "event_object": "deal", "name": "ml-connector",
            "http_auth_user": "hook-user", "http_auth_password": "hook-pass", **extra}  # fmt: skip
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers={"x-api-token": sandbox.api_token}) as client:
        response = await client.post("/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def test_deal_won_sends_v2_payload_with_basic_auth(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    hook = await _register(pipedrive_sim, receiver.url)
    assert hook["version"] == "2.0"
    pipedrive_sim.set_deal_status(1, "won")
    await pipedrive_sim.wait_for_deliveries(1)
    call = receiver.calls[0]
    assert call["headers"]["Authorization"] == "Basic " + base64.b64encode(b"hook-user:hook-pass").decode()
    meta, data, previous = call["body"]["meta"], call["body"]["data"], call["body"]["previous"]
    assert (meta["action"], meta["entity"], meta["entity_id"], meta["attempt"]) == ("change", "deal", "1", 1)
    assert meta["version"] == "2.0" and meta["change_source"] == "app" and meta["webhook_id"] == str(hook["id"])
    assert data["status"] == "won" and data["won_time"] is not None
    assert previous["status"] == "open"
    assert "title" not in previous  # only the changed fields
    assert data["visible_to"] == "3"  # a string in webhook v2
    assert data["custom_fields"][DEAL_TERMS] == {"id": 33, "type": "enum"}
    assert data["custom_fields"][DEAL_CHANNELS] == {"values": [{"id": 41}, {"id": 42}], "type": "set"}
    assert data["custom_fields"][DEAL_FREIGHT] == {"currency": "EUR", "type": "monetary", "value": 120}


async def test_v1_webhook_gets_v1_payload(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    await _register(pipedrive_sim, receiver.url, version="1.0")
    pipedrive_sim.set_deal_status(1, "won")
    await pipedrive_sim.wait_for_deliveries(1)
    body = receiver.calls[0]["body"]
    assert body["event"] == "updated.deal" and body["retry"] == 0
    assert body["meta"]["action"] == "updated" and body["meta"]["object"] == "deal" and body["meta"]["id"] == 1
    assert body["current"]["status"] == "won" and body["previous"]["status"] == "open"
    assert body["previous"]["title"] == body["current"]["title"]  # v1 sends both full objects
    assert body["current"][DEAL_TERMS] == "33"  # v1: enum as a string on the root
    assert body["current"][DEAL_CHANNELS] == "41,42"
    assert body["current"][f"{DEAL_FREIGHT}_currency"] == "EUR"
    assert len(body["current"]["update_time"]) == 19  # "YYYY-MM-DD HH:MM:SS"


async def test_api_change_and_create_events(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    body = {"subscription_url": receiver.url, "event_action": "*", "event_object": "*", "name": "all"}
    headers = {"x-api-token": pipedrive_sim.api_token}
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url, headers=headers) as client:
        assert (await client.post("/v1/webhooks", json=body)).status_code == 201
        await client.patch("/api/v2/deals/3", json={"title": "Renamed"})
        await client.post("/api/v2/products", json={"name": "New item", "code": "N1"})
        await client.patch("/api/v2/deals/3", json={"title": "Renamed"})  # no change -> no event
    await pipedrive_sim.wait_for_deliveries(2)
    metas = sorted((c["body"]["meta"]["entity"], c["body"]["meta"]["action"]) for c in receiver.calls)
    assert metas == [("deal", "change"), ("product", "create")]
    created = next(c["body"] for c in receiver.calls if c["body"]["meta"]["action"] == "create")
    assert created["previous"] is None and created["meta"]["change_source"] == "api"
    assert "Authorization" not in receiver.calls[0]["headers"]


async def test_failed_delivery_is_retried_three_more_times(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    await _register(pipedrive_sim, receiver.url)
    receiver.script = [500, 502, 503, 500]
    pipedrive_sim.set_deal_status(2, "lost")
    deliveries = await pipedrive_sim.wait_for_deliveries(4)
    assert [d["attempt"] for d in deliveries] == [1, 2, 3, 4]
    assert [d["status"] for d in deliveries] == [500, 502, 503, 500]
    assert [c["body"]["meta"]["attempt"] for c in receiver.calls] == [1, 2, 3, 4]
    assert len({c["body"]["meta"]["id"] for c in receiver.calls}) == 1  # one event, four attempts


async def test_retry_until_success_stops(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    await _register(pipedrive_sim, receiver.url)
    receiver.script = [500]
    pipedrive_sim.set_deal_status(2, "lost")
    deliveries = await pipedrive_sim.wait_for_deliveries(1, ok_only=True)
    assert [(d["attempt"], d["ok"]) for d in deliveries] == [(1, False), (2, True)]


async def test_receiver_timeout_counts_as_failure(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    await _register(pipedrive_sim, receiver.url)
    pipedrive_sim.sim.dispatcher.timeout = 0.2  # the documented 10 s, shortened for the test
    receiver.hang_next = 1
    pipedrive_sim.set_deal_status(2, "lost")
    deliveries = await pipedrive_sim.wait_for_deliveries(1, ok_only=True)
    assert deliveries[0]["error"].startswith("timeout") and deliveries[0]["attempt"] == 1
    assert deliveries[1]["ok"] and deliveries[1]["attempt"] == 2


async def test_drop_and_duplicate_faults(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    await _register(pipedrive_sim, receiver.url)
    pipedrive_sim.webhook_fault("drop")
    pipedrive_sim.set_deal_status(1, "won")
    dropped = await pipedrive_sim.wait_for_deliveries(1)
    assert dropped[0]["dropped"] and receiver.calls == []
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url) as client:
        response = await client.post("/_sandbox/webhook-faults", json={"mode": "duplicate", "times": 1})
        assert response.json()["data"]["duplicate_next"] == 1
    pipedrive_sim.set_deal_status(1, "lost")
    await pipedrive_sim.wait_for_deliveries(3, ok_only=False)
    assert len(receiver.calls) == 2
    assert receiver.calls[0]["body"]["meta"]["id"] == receiver.calls[1]["body"]["meta"]["id"]


async def test_webhook_list_delete_and_validation(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    headers = {"x-api-token": pipedrive_sim.api_token}
    async with httpx.AsyncClient(base_url=pipedrive_sim.base_url, headers=headers) as client:
        hook = await _register(pipedrive_sim, receiver.url)
        listed = (await client.get("/v1/webhooks")).json()
        assert listed["status"] == "ok" and [h["id"] for h in listed["data"]] == [hook["id"]]
        bad = await client.post("/v1/webhooks", json={"subscription_url": "ftp://x", "event_action": "nope"})
        assert bad.status_code == 400
        assert set(bad.json()["errors"]) == {"subscription_url", "event_action", "event_object", "name"}
        malformed = await client.post("/v1/webhooks", content=b"[", headers={"content-type": "application/json"})
        assert malformed.status_code == 400
        form = {
            "subscription_url": receiver.url,
            "event_action": "*",
            "event_object": "deal",
            "name": "f",
            "user_id": "x",
        }
        bad_form = await client.post("/v1/webhooks", data=form)
        assert bad_form.status_code == 400 and bad_form.json()["errors"] == {"user_id": ["must be an integer"]}
        assert (await client.delete(f"/v1/webhooks/{hook['id']}")).json() == {"status": "ok", "success": True}
        missing = await client.delete(f"/v1/webhooks/{hook['id']}")
        assert missing.status_code == 404 and missing.json()["errors"] == {"id": ["not found"]}
    pipedrive_sim.set_deal_status(1, "won")
    with pytest.raises(TimeoutError):
        await pipedrive_sim.wait_for_deliveries(1, timeout=0.05)  # deleted: nothing is sent


async def test_delete_event_carries_last_state_in_previous(pipedrive_sim: PipedriveSandbox, receiver: Receiver) -> None:
    await _register(pipedrive_sim, receiver.url)
    async with httpx.AsyncClient(
        base_url=pipedrive_sim.base_url, headers={"x-api-token": pipedrive_sim.api_token}
    ) as c:
        assert (await c.delete("/api/v2/deals/3")).status_code == 200
    await pipedrive_sim.wait_for_deliveries(1)
    body = receiver.calls[0]["body"]
    assert body["meta"]["action"] == "delete" and body["data"] is None
    assert body["previous"]["title"] == "Northwind export devices"
