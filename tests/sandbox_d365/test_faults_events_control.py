"""Fault injection, service protection limits, business events, the /_sandbox/ control API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from connector.dev.sandbox.d365 import D365Sandbox


async def test_injected_faults_answer_then_clear(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    d365_sim.inject_fault(status=429, retry_after=3, count=2, path="/data/Currencies")
    d365_sim.inject_fault(status=502, html=True, path="/data/CustomerGroups")
    for _ in range(2):
        throttled = await api.get("Currencies")
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "3"
    assert (await api.get("Currencies")).status_code == 200
    gateway = await api.get("CustomerGroups")
    assert gateway.status_code == 502
    assert gateway.headers["Content-Type"].startswith("text/html")
    assert "<html>" in gateway.text
    assert [r.status for r in d365_sim.requests() if r.path == "/data/Currencies"] == [429, 429, 200]


async def test_service_protection_limit_answers_429_with_retry_after(
    d365_sim: D365Sandbox, api: httpx.AsyncClient
) -> None:
    d365_sim.set_limits(max_requests=2, window_seconds=60)
    assert [(await api.get("Currencies")).status_code for _ in range(3)] == [200, 200, 429]
    limited = await api.get("Currencies")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "exceeded the limit of 2 over the time window of 60 seconds" in limited.json()["error"]["message"]
    d365_sim.set_limits()
    assert (await api.get("Currencies")).status_code == 200


class Receiver:
    """A loopback endpoint that records business events; fails the first `fail_first` posts with 503."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        return web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/events", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield target, f"http://127.0.0.1:{port}/events"
    await runner.cleanup()


async def test_business_events_test_event_then_change_events_with_retries(
    d365_sim: D365Sandbox, api: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    await d365_sim.set_event_endpoint(url, legal_entity="usmf")
    first = await d365_sim.wait_for_events(1, timeout=5)
    assert first[0].payload["BusinessEventId"] == "BusinessEventsTestEndpointContract"
    target.fail_first = 2
    await api.patch("CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')", json={"AddressCity": "Austin"})
    await api.post("ReleasedProductsV2", json={"ItemNumber": "NEW-1", "SalesUnitSymbol": "pcs"})
    deliveries = await d365_sim.wait_for_events(3, timeout=5)
    by_id = {d.payload["BusinessEventId"]: d for d in deliveries[1:]}
    customer = by_id["CustomerChangedBusinessEvent"].payload
    product = by_id["ReleasedProductChangedBusinessEvent"].payload
    assert all(d.delivered for d in deliveries)
    assert sum(d.attempts for d in deliveries[1:]) == 4  # two 503s were retried
    assert customer["BusinessEventId"] == "CustomerChangedBusinessEvent"
    assert (customer["CustomerAccount"], customer["ChangeType"], customer["BusinessEventLegalEntity"]) == (
        "US-001", "Updated", "usmf",
    )  # fmt: skip
    assert product["ItemNumber"] == "NEW-1" and product["ChangeType"] == "Created"
    assert list(customer) == sorted(customer)
    assert customer["EventTime"].startswith("/Date(") and customer["EventTimeIso8601"].endswith("Z")
    assert product["ControlNumber"] > customer["ControlNumber"] > first[0].payload["ControlNumber"]
    assert len(target.received) == 5  # test event + 2 failed tries + 2 deliveries


async def test_event_delivery_gives_up_after_three_retries(
    d365_sim: D365Sandbox, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.fail_first = 10
    await d365_sim.set_event_endpoint(url)
    [delivery] = await d365_sim.wait_for_events(1, timeout=5)
    assert (delivery.attempts, delivery.status, delivery.delivered) == (4, 503, False)


async def test_failed_changeset_emits_no_events(
    d365_sim: D365Sandbox, api: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    await d365_sim.set_event_endpoint(url)
    await d365_sim.wait_for_events(1, timeout=5)
    await api.post("CustomersV3", json={"OrganizationName": "X", "CustomerGroupId": "nope", "SalesCurrencyCode": "USD"})
    created = await api.post(
        "CustomersV3", json={"OrganizationName": "Y", "CustomerGroupId": "10", "SalesCurrencyCode": "USD"}
    )
    deliveries = await d365_sim.wait_for_events(2, timeout=5)
    assert [d.payload.get("CustomerAccount") for d in deliveries[1:]] == [created.json()["CustomerAccount"]]


async def test_control_api_seed_reset_faults_requests_orders(d365_sim: D365Sandbox, api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=d365_sim.base_url, verify=d365_sim.ssl_context()) as control:
        info = (await control.get("/_sandbox/info")).json()
        assert info["default_company"] == "usmf" and "secret" not in json.dumps(info)
        bad = await control.post("/_sandbox/seed", json={"customers": [{"CustomerAccount": "Z", "Nmae": "typo"}]})
        assert bad.status_code == 400 and "Nmae" in bad.json()["error"]
        seeded = await control.post(
            "/_sandbox/seed",
            json={"sales_orders": [{"dataAreaId": "usmf", "OrderingCustomerAccountNumber": "US-001",
                                    "lines": [{"ItemNumber": "D0001", "OrderedSalesQuantity": 2}]}]},
        )  # fmt: skip
        assert seeded.status_code == 200
        orders = (await control.get("/_sandbox/sales-orders")).json()
        assert orders[0]["SalesOrderLines"][0]["LineAmount"] == 441
        fault = await control.post("/_sandbox/faults", json={"status": 503, "path": "/data/Currencies"})
        assert fault.status_code == 200
        assert (await api.get("Currencies")).status_code == 503
        log = (await control.get("/_sandbox/requests")).json()
        assert log[-1]["path"] == "/data/Currencies" and log[-1]["status"] == 503
        assert (await control.post("/_sandbox/tokens/expire")).status_code == 200
        assert (await api.get("Currencies")).status_code == 401
        assert (await control.post("/_sandbox/reset")).status_code == 200
        assert (await control.get("/_sandbox/sales-orders")).json() == []
        not_json = await control.post("/_sandbox/faults", content=b"{x")
        assert not_json.status_code == 400
