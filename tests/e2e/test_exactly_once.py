"""Invariant 1: one won deal gives at most one D365 sales order, whatever happens: duplicate and
out-of-order webhooks, poll overlap, dropped webhooks, replays, two workers, a crash between any steps."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from typing import Any

import azure.functions as func
import httpx

from connector.dev.localhost import QueuePump
from connector.dev.sandbox.stack import WEBHOOK_USER
from connector.flows.orders import build_order_for_deal
from connector.flows.poll import CHECKPOINT, poll_won_deals
from connector.flows.replay import replay_deals
from connector.queues import OrderBuild
from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E


def assert_one_order(e2e: E2E, deal_id: int, lines: int) -> dict[str, Any]:
    orders = e2e.orders(f"PD-{deal_id}")
    assert len(orders) == 1, orders
    assert len(orders[0]["SalesOrderLines"]) == lines
    return orders[0]


def header_posts(e2e: E2E) -> int:
    return len([r for r in e2e.d365_writes("SalesOrderHeadersV2") if r.status < 300])


# ---- webhooks --------------------------------------------------------------------------------------


async def test_duplicate_webhook_delivery_gives_one_order(e2e: E2E) -> None:
    await e2e.register_webhook()
    e2e.stack.pipedrive.webhook_fault("duplicate")
    e2e.stack.pipedrive.set_deal_status(101, "won")
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(2, ok_only=True)
    assert len({d["event_id"] for d in deliveries}) == 1  # the same event, delivered twice
    assert await e2e.queue_depth() == 1  # the second delivery was deduped at enqueue
    assert (await e2e.events(101)).count("enqueue.skipped") == 1

    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert_one_order(e2e, 101, 2)
    assert header_posts(e2e) == 1


async def test_v1_webhook_is_understood_and_gives_one_order(e2e: E2E) -> None:
    hook = await e2e.register_webhook(version="1.0")
    assert hook.version == "1.0"
    e2e.stack.pipedrive.set_deal_status(102, "won")
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(1, ok_only=True)
    assert deliveries[0]["body"]["v"] == 1
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert_one_order(e2e, 102, 2)


async def post_webhook(e2e: E2E, body: Any, *, password: str | None = None, raw: bytes | None = None) -> httpx.Response:
    secret = e2e.stack.webhook_password if password is None else password
    auth = base64.b64encode(f"{WEBHOOK_USER}:{secret}".encode()).decode()
    content = raw if raw is not None else json.dumps(body).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            e2e.webhook_url,
            content=content,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )


async def test_won_then_reopened_before_build_then_won_again(e2e: E2E) -> None:
    await e2e.register_webhook()
    e2e.stack.pipedrive.set_deal_status(103, "won")
    won = await e2e.stack.pipedrive.wait_for_deliveries(1, ok_only=True)
    e2e.stack.pipedrive.set_deal_status(103, "open")
    await e2e.stack.pipedrive.wait_for_deliveries(2, ok_only=True)

    # The worker re-reads the deal: it is open now, so no order, and a failed job that says why.
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"failed": 1}
    job = await e2e.job(103)
    assert job is not None and job.state == "failed"
    assert "not won" in (job.last_error or "")
    assert e2e.orders("PD-103") == []
    assert e2e.d365_writes() == []

    # A late redelivery of the old "won" event (out of order) changes nothing: the deal is still open.
    late = await post_webhook(e2e, won[0]["body"])
    assert late.status_code == 200 and late.json()["status"] == "queued"
    await e2e.drain()
    assert e2e.orders("PD-103") == []

    # Won again: a new webhook re-opens the failed job and the order is made, once.
    e2e.stack.pipedrive.set_deal_status(103, "won")
    await e2e.stack.pipedrive.wait_for_deliveries(3, ok_only=True)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert_one_order(e2e, 103, 2)
    # ... and a late duplicate of the first "won" now finds the job done.
    again = await post_webhook(e2e, won[0]["body"])
    assert again.json()["status"] == "duplicate"
    assert await e2e.queue_depth() == 0

    # Reopened and won again after the order exists: the new win is acknowledged, no second order.
    e2e.stack.pipedrive.set_deal_status(103, "open")
    e2e.stack.pipedrive.set_deal_status(103, "won")
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(5, ok_only=True)
    assert [d["status"] for d in deliveries[-2:]] == [200, 200]
    assert await e2e.queue_depth() == 0
    await e2e.drain()
    assert_one_order(e2e, 103, 2)
    assert header_posts(e2e) == 1


# ---- poll --------------------------------------------------------------------------------------------


async def test_webhook_and_poll_race_give_one_order(e2e: E2E) -> None:
    await e2e.register_webhook()
    e2e.stack.pipedrive.set_deal_status(104, "won")
    await e2e.stack.pipedrive.wait_for_deliveries(1, ok_only=True)
    result = await poll_won_deals(await e2e.rt.poll_deps())
    assert result.seen == 1 and result.enqueued == 0  # already queued by the webhook
    # Even a message sent around the guard (a racing poll that got past it) is harmless.
    await e2e.rt.queues.send(OrderBuild(deal_id=104, reason="poll", correlation_id="race"))
    pump = await e2e.drain()
    # Both messages run in one batch: the loser finds the job done, or busy and goes back with a delay.
    assert pump.stats.outcomes.get("created") == 1, pump.stats
    assert pump.stats.outcomes.get("duplicate", 0) + pump.stats.outcomes.get("busy", 0) == 1, pump.stats
    assert_one_order(e2e, 104, 5)
    assert header_posts(e2e) == 1


async def test_poll_and_webhook_enqueueing_at_the_same_moment_send_one_message(e2e: E2E) -> None:
    e2e.stack.pipedrive.set_deal_status(107, "won")
    polled, hooked = await asyncio.gather(
        poll_won_deals(await e2e.rt.poll_deps()),
        e2e.rt.queues.enqueue_order(107, reason="webhook", correlation_id="hook-107"),
    )
    assert polled.enqueued + int(hooked) == 1
    assert await e2e.queue_depth() == 1
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert_one_order(e2e, 107, 2)


async def test_dropped_webhook_is_recovered_by_the_poll(e2e: E2E) -> None:
    await e2e.register_webhook()
    e2e.stack.pipedrive.webhook_fault("drop")
    e2e.stack.pipedrive.set_deal_status(106, "won")
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(1)
    assert deliveries[0]["dropped"]
    assert await e2e.queue_depth() == 0

    result = await poll_won_deals(await e2e.rt.poll_deps())
    assert result.enqueued == 1
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert_one_order(e2e, 106, 2)


async def test_a_won_deal_archived_while_its_webhooks_were_lost_is_recovered_by_the_poll(e2e: E2E) -> None:
    """Pipedrive's `/deals` leaves archived deals out: the poll also reads `/deals/archived`, or a deal won
    and archived while its webhooks were lost would never become an order. POLL_ARCHIVED=false skips it."""
    await e2e.register_webhook()
    e2e.stack.pipedrive.webhook_fault("drop", times=2)
    e2e.stack.pipedrive.set_deal_status(106, "won")
    e2e.stack.pipedrive.change_deal(106, is_archived=True)
    deliveries = await e2e.stack.pipedrive.wait_for_deliveries(2)
    assert [d["dropped"] for d in deliveries] == [True, True]

    deps = await e2e.rt.poll_deps()
    blind = await poll_won_deals(dataclasses.replace(deps, archived=False))
    assert (blind.seen, blind.enqueued) == (0, 0)
    result = await poll_won_deals(deps)
    assert (result.seen, result.enqueued) == (1, 1)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert_one_order(e2e, 106, 2)
    # Pipedrive refuses API edits of an archived deal: the order number is not written back, and no
    # call is spent on the refusal.
    assert "deal.write_back_skipped" in await e2e.events(106)
    assert not [r for r in e2e.stack.pipedrive.requests() if r["method"] == "PATCH" and "/deals/" in r["path"]]


async def test_poll_with_nothing_new_advances_nothing(e2e: E2E) -> None:
    await e2e.win(110)
    await e2e.drain()
    first = await poll_won_deals(await e2e.rt.poll_deps())
    watermark = await e2e.rt.state.checkpoints.get(CHECKPOINT)
    assert watermark is not None and first.enqueued == 0

    calls_before = len(e2e.stack.pipedrive.requests())
    second = await poll_won_deals(await e2e.rt.poll_deps())
    assert second.enqueued == 0
    assert await e2e.rt.state.checkpoints.get(CHECKPOINT) == watermark
    calls = [r["path"] for r in e2e.stack.pipedrive.requests()[calls_before:]]
    assert calls == ["/api/v2/deals", "/api/v2/deals/archived"]  # one page of each list, nothing else
    assert await e2e.queue_depth() == 0
    assert_one_order(e2e, 110, 1)


# ---- replays -----------------------------------------------------------------------------------------


async def test_replay_of_a_done_deal_makes_no_second_order(e2e: E2E) -> None:
    await e2e.win(101)
    await e2e.drain()
    assert_one_order(e2e, 101, 2)

    # CLI-equivalent replay: the job guard skips a done deal.
    result = await replay_deals(await e2e.rt.requeue_deps(), [101])
    assert result.requeued == [] and result.skipped == {101: "done"}

    # The admin HTTP function, through its decorated handler.
    handler = app_function("admin_replay").get_user_function()
    request = func.HttpRequest(
        method="POST", url="/api/admin/replay", body=json.dumps({"deal_ids": [101]}).encode(), headers={}
    )
    response = await handler(request)
    assert response.status_code == 202
    assert json.loads(response.get_body())["skipped"] == {"101": "done"}
    assert await e2e.queue_depth() == 0

    # A message that bypasses the guard still finds the job done: acknowledged as a duplicate.
    await e2e.rt.queues.send(OrderBuild(deal_id=101, reason="replay", correlation_id="replay-x"))
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"duplicate": 1}
    assert_one_order(e2e, 101, 2)
    assert header_posts(e2e) == 1
    assert "build.duplicate" in await e2e.events(101)


# ---- concurrency -------------------------------------------------------------------------------------


async def test_two_workers_on_the_same_deal_make_one_order(e2e: E2E) -> None:
    e2e.stack.pipedrive.set_deal_status(105, "won")
    for n in (1, 2):
        await e2e.rt.queues.send(OrderBuild(deal_id=105, reason="replay", correlation_id=f"worker-{n}"))
    pumps = [QueuePump(e2e.rt, batch_size=1, retry_after=0) for _ in range(2)]
    await asyncio.gather(*(p.run_once() for p in pumps))
    await asyncio.gather(*(p.drain() for p in pumps))

    outcomes: dict[str, int] = {}
    for pump in pumps:
        for name, n in pump.stats.outcomes.items():
            outcomes[name] = outcomes.get(name, 0) + n
    assert outcomes.get("created") == 1, outcomes
    # The other message either found the job done or saw it busy and went back with a delay.
    assert outcomes.get("duplicate", 0) + outcomes.get("busy", 0) == 1, outcomes
    assert_one_order(e2e, 105, 2)
    assert header_posts(e2e) == 1
    assert len([c for c in e2e.stack.d365.records("CustomersV3") if c["OrganizationName"].startswith("Tailspin")]) == 1


# ---- crashes -----------------------------------------------------------------------------------------

# A crash at every step, in every configuration: tests/e2e/test_matrix.py.


async def test_a_stalled_worker_overtaken_after_its_lease_makes_no_second_order(e2e: E2E) -> None:
    """Worker A stalls past its lease before the create; worker B takes the job over and builds the
    order; A wakes up, finds D365 refuse the duplicate, adopts it, and must not overwrite B's result."""
    await e2e.win(104)
    overtaken: list[str] = []

    async def stall_then_overtake(step: str) -> None:
        if step != "before_create" or overtaken:
            return
        overtaken.append(step)
        job = await e2e.rt.state.jobs.get("order", "104")
        assert job is not None and job.state == "running"
        await e2e.rt.state.jobs.renew(job, -60)  # A's lease runs out while it stalls
        b = await build_order_for_deal(
            await e2e.rt.order_deps(), OrderBuild(deal_id=104, reason="poll", correlation_id="worker-b")
        )
        assert b.outcome == "created"

    pump = await e2e.drain(checkpoint=stall_then_overtake)
    assert overtaken == ["before_create"]
    assert_one_order(e2e, 104, 5)
    assert header_posts(e2e) == 1
    job = await e2e.job(104)
    assert job is not None and job.state == "done" and job.result is not None
    assert job.result["order_number"] == "PD104" and job.result["outcome"] == "created"  # B's record stands
    # A's late finish is recognised as superseded: no failed attempt, no retry, B's record kept.
    assert pump.stats.outcomes == {"superseded": 1}, pump.stats
    assert pump.stats.failed_attempts == 0
    events = await e2e.events(104)
    assert events.count("order.created") == 1 and events.count("customer.created") == 1
    assert events[-1] == "build.superseded"
