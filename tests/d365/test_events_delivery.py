"""Business events the simulator POSTs over real HTTP parse into typed events (test event recognised)."""

from __future__ import annotations

from aiohttp import web

from connector.d365.client import D365Client
from connector.d365.events import BusinessEvent, InvalidEventError, parse_business_event
from connector.d365.models import CustomerCreate
from connector.dev.sandbox.d365 import D365Sandbox


async def test_delivered_events_parse_and_the_test_event_is_recognised(d365_sim: D365Sandbox, d365: D365Client) -> None:
    received: list[BusinessEvent] = []

    async def endpoint(request: web.Request) -> web.Response:
        try:
            received.append(parse_business_event(await request.read()))
        except InvalidEventError as exc:
            return web.json_response({"error": str(exc), "lines": exc.lines}, status=400)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/d365/events", endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await d365_sim.set_event_endpoint(f"http://127.0.0.1:{port}/api/d365/events")
        created = await d365.create_customer(
            CustomerCreate(data_area_id="usmf", organization_name="Event Co", customer_group_id="10",
                           sales_currency_code="USD")
        )  # fmt: skip
        deliveries = await d365_sim.wait_for_events(2)
    finally:
        await runner.cleanup()

    assert all(d.delivered and d.status == 200 for d in deliveries)
    assert [e.is_test for e in received] == [True, False]
    change = received[1]
    assert change.business_event_id == "CustomerChangedBusinessEvent" and change.legal_entity == "usmf"
    assert change.fields["CustomerAccount"] == created.customer_account
    assert change.control_number != received[0].control_number
    assert change.event_id != received[0].event_id and change.when is not None
