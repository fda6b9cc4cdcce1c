from tests.fixtures.stack import E2E


async def test_won_deal_via_webhook_becomes_one_order(e2e: E2E) -> None:
    await e2e.register_webhook()
    e2e.stack.pipedrive.set_deal_status(101, "won")
    await e2e.stack.pipedrive.wait_for_deliveries(1, ok_only=True)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}, pump.stats
    orders = e2e.orders("PD-101")
    assert len(orders) == 1
