"""Invariant 2 (nothing silently lost) and 7 (rate limits honoured): a permanent failure is a failed
job with an actionable reason and no D365 writes; transient faults are ridden out or re-queued with a
growing delay until the outage horizon; an error nobody expected is retried by the host and, after
MAX_DEQUEUE_COUNT, parked in the poison queue with its job marked failed; every one of them can be replayed."""

from __future__ import annotations

import httpx
import pytest

from connector.dev.localhost import QueuePump
from connector.dev.sandbox.demo_data import ACCOUNT_FIELD, UNMAPPED_CODE_FIX, UNMAPPED_PRODUCT_ID, d365_seed
from connector.errors import TransientError
from connector.flows.replay import replay_deals, replay_failed, replay_poison
from connector.pipedrive.models import ProductInput
from connector.state.jobs import master_job
from tests.fixtures.stack import E2E, VirtualClock

REASON = "has no code; set its code to a D365 item number"


async def test_unmapped_product_fails_visibly_without_d365_writes_then_replays(e2e: E2E) -> None:
    await e2e.win(108)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"failed": 1}
    assert pump.stats.failed_attempts == 0  # a permanent failure is not retried blindly
    job = await e2e.job(108)
    assert job is not None and job.state == "failed"
    assert REASON in (job.last_error or "")
    assert e2e.d365_writes() == []
    assert e2e.orders("PD-108") == []
    assert await e2e.queue_depth() == 0 and await e2e.poison_depth() == 0
    failed = [t for t in await e2e.rt.state.audit.trail("deal-108") if t.event == "build.failed"]
    assert len(failed) == 1 and REASON in failed[0].detail["reason"]

    # A person fixes the product in Pipedrive and replays the deal: now it is built.
    pipedrive = await e2e.rt.pipedrive()
    await pipedrive.update_product(UNMAPPED_PRODUCT_ID, ProductInput(code=UNMAPPED_CODE_FIX))
    replay = await replay_deals(await e2e.rt.requeue_deps(), [108])
    assert replay.requeued == [108]
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    orders = e2e.orders("PD-108")
    assert len(orders) == 1
    assert [line["ItemNumber"] for line in orders[0]["SalesOrderLines"]] == [UNMAPPED_CODE_FIX, "SEAL-KIT"]
    job = await e2e.job(108)
    assert job is not None and job.state == "done"


async def test_d365_429_with_short_retry_after_is_ridden_out(e2e: E2E) -> None:
    e2e.stack.d365.inject_fault(status=429, retry_after=1, count=2, path="/data/$batch")
    await e2e.win(101)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert pump.stats.failed_attempts == 0  # waited inline, the message never failed
    batches = [r.status for r in e2e.stack.d365.requests() if r.path == "/data/$batch"]
    assert batches == [429, 429, 200]
    times = [r.time for r in e2e.stack.d365.requests() if r.path == "/data/$batch"]
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9  # Retry-After honoured, not hammered
    assert len(e2e.orders("PD-101")) == 1


async def test_long_retry_after_requeues_with_a_delay_instead_of_sleeping(e2e: E2E) -> None:
    e2e.stack.d365.inject_fault(status=429, retry_after=120, count=1, path="/data/$batch")
    await e2e.win(102)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"wait": 1}  # the server's wait is not a failure
    assert pump.stats.failed_attempts == 0
    job = await e2e.job(102)
    assert job is not None and job.state == "queued" and job.failures == 0  # given back, not failed
    assert e2e.orders("PD-102") == []
    # The message is back in the queue, invisible for the server's wait.
    assert await e2e.queue_depth() == 1
    queue = await e2e.rt.queues.client(e2e.rt.queues.order_queue)
    assert [m async for m in queue.receive_messages(max_messages=1, visibility_timeout=1)] == []
    requeued = [t for t in await e2e.rt.state.audit.trail("deal-102") if t.event == "build.requeued"]
    assert len(requeued) == 1 and requeued[0].detail["delay"] >= 100


async def test_an_unexpected_error_every_time_is_poisoned_with_its_job_failed_then_replayed(e2e: E2E) -> None:
    """A bug (not an API error) fails every attempt: the host retries MAX_DEQUEUE_COUNT times, the last
    attempt marks the job failed (so `status` names it), the message is parked, `replay --failed` runs it."""

    async def bug(step: str) -> None:
        if step == "deal_read":
            raise RuntimeError("a bug in the flow")

    await e2e.win(109)
    pump = await e2e.drain(checkpoint=bug)
    limit = e2e.rt.settings.max_dequeue_count
    assert pump.stats.failed_attempts == limit
    assert pump.stats.poisoned == 1
    assert await e2e.queue_depth() == 0 and await e2e.poison_depth() == 1
    assert e2e.d365_writes() == []
    job = await e2e.job(109)
    assert job is not None and job.state == "failed"
    assert job.last_error == f"gave up after {limit} attempts: RuntimeError: a bug in the flow"
    events = await e2e.events(109)
    assert events.count("build.retry") == limit and events[-1] == "build.gave_up"
    poisoned = await e2e.rt.state.audit.trail(f"queue-{e2e.rt.queues.order_queue}")
    assert [t.event for t in poisoned] == ["message.poisoned"]

    # The bug is fixed; the operator replays failed jobs: one order.
    result = await replay_failed(await e2e.rt.requeue_deps())
    assert result.requeued == [109]
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert len(e2e.orders("PD-109")) == 1


async def test_a_poisoned_master_push_is_replayed_back_to_the_master_queue(e2e: E2E) -> None:
    """`replay --poison` (and the admin page's button) serves both queues: a master push parked after a bug
    goes back to the master queue and is pushed, so the poison alert stops without hand-deleting it."""

    async def bug(step: str) -> None:
        if step == "before_create":
            raise RuntimeError("a bug in the push")

    queues = e2e.rt.queues
    await queues.enqueue_master("product", UNMAPPED_CODE_FIX, "usmf", reason="cli", correlation_id="poison-push")
    parked = await QueuePump.for_masters(e2e.rt, retry_after=0, checkpoint=bug).drain()
    assert parked.poisoned == 1 and await queues.poison_depth(queues.master_queue) == 1

    result = await replay_poison(await e2e.rt.requeue_deps())
    assert result.poison_requeued == 1
    assert await queues.poison_depth(queues.master_queue) == 0 and await queues.depth(queues.master_queue) == 1
    pushed = await QueuePump.for_masters(e2e.rt, retry_after=0).drain()
    assert pushed.outcomes == {"created": 1}
    job = await e2e.rt.state.jobs.get(master_job("product"), f"usmf:{UNMAPPED_CODE_FIX}")
    assert job is not None and job.state == "done"
    events = [t.event for t in await e2e.rt.state.audit.trail(f"product-usmf-{UNMAPPED_CODE_FIX}")]
    assert "poison.requeued" in events, events


async def test_a_d365_outage_backs_off_to_the_horizon_and_completes_after_recovery(e2e: E2E) -> None:
    """Two hours of D365 outage (virtual clock): the deal backs off 30 s, 2 min, 10 min, 30 min, 1 h...,
    never fails before the horizon, is never poisoned, and is built once D365 is back."""
    clock = VirtualClock()
    e2e.rt.lifecycle.clock = clock
    e2e.rt.lifecycle.requeue_scale = 0  # virtual time: a re-queued message is visible at once
    e2e.rt.lifecycle.schedule = (30, 120, 600, 1800, 3600)
    e2e.stack.d365.inject_fault(status=503, count=10_000, path="/data/")
    await e2e.win(101)
    delays: list[float] = []
    while clock.elapsed < 2 * 3600:
        pump = QueuePump(e2e.rt, retry_after=0)
        assert await pump.run_once() == 1  # one attempt: the back-off message comes back at once (scale 0)
        assert pump.stats.outcomes == {"retry": 1}, pump.stats
        job = await e2e.job(101)
        assert job is not None and job.state == "queued" and job.retry_at is not None
        delays.append((job.retry_at - clock()).total_seconds())
        clock.advance(delays[-1])
    assert delays[:6] == [30, 120, 600, 1800, 3600, 3600]
    assert await e2e.poison_depth() == 0 and e2e.orders("PD-101") == []

    e2e.stack.d365.faults.clear()
    pump = QueuePump(e2e.rt, retry_after=0)
    await pump.run_once()
    assert pump.stats.outcomes == {"created": 1}
    assert len(e2e.orders("PD-101")) == 1
    job = await e2e.job(101)
    assert job is not None and job.state == "done" and job.attempts == len(delays) + 1


async def test_the_requeue_row_weighs_what_came_before_it(e2e: E2E) -> None:
    """`build.requeued` is a warning after a back-off, and debug after a message that came before its back-off
    was over (routine: the runner wrote `build.early` at debug), as docs/audit-events.md says."""
    clock = VirtualClock()
    e2e.rt.lifecycle.clock = clock
    e2e.rt.lifecycle.requeue_scale = 0  # virtual time: a re-queued message is visible at once
    e2e.rt.lifecycle.schedule = (30,)
    e2e.stack.d365.inject_fault(status=503, count=10_000, path="/data/")
    await e2e.win(101)
    for outcome in ("retry", "early"):  # the clock stands still: the second message is early
        pump = QueuePump(e2e.rt, retry_after=0)
        await pump.run_once()
        assert pump.stats.outcomes == {outcome: 1}, pump.stats
    watched = ("build.retry", "build.early", "build.requeued")
    rows = [(t.event, t.level) for t in await e2e.rt.state.audit.trail("deal-101") if t.event in watched]
    assert rows == [
        ("build.retry", "warning"),
        ("build.requeued", "warning"),
        ("build.early", "debug"),
        ("build.requeued", "debug"),
    ]


async def test_past_the_horizon_the_job_fails_with_the_last_error(e2e: E2E) -> None:
    clock = VirtualClock()
    e2e.rt.lifecycle.clock = clock
    e2e.rt.lifecycle.requeue_scale = 0  # virtual time: a re-queued message is visible at once
    e2e.rt.lifecycle.schedule = (3600,)
    e2e.rt.lifecycle.horizon = 3 * 3600
    e2e.stack.d365.inject_fault(status=503, count=10_000, path="/data/")
    await e2e.win(101)
    for _ in range(4):
        pump = QueuePump(e2e.rt, retry_after=0)
        await pump.run_once()
        clock.advance(3600)
    job = await e2e.job(101)
    assert job is not None and job.state == "failed"
    assert (job.last_error or "").startswith("gave up after 4 attempts over 3.0 h; last error: ")
    assert "503" in (job.last_error or "")
    assert await e2e.queue_depth() == 0 and await e2e.poison_depth() == 0


async def test_a_secret_store_outage_at_a_cold_start_backs_off_and_recovers(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers open the API clients before a flow runs (its deps); when the secret store does not answer,
    the order and the master push back off like any transient failure (never poisoned, never failed before the
    horizon) and run once it answers again."""
    clock = VirtualClock()
    e2e.rt.lifecycle.clock = clock
    e2e.rt.lifecycle.requeue_scale = 0  # virtual time: a re-queued message is visible at once
    e2e.rt.lifecycle.schedule = (30, 120)

    async def unreachable(name: str) -> str:
        raise TransientError(f"key vault unreachable reading {name!r} (ServiceRequestError)")

    monkeypatch.setattr(e2e.rt.secrets, "get", unreachable)
    await e2e.win(101)
    await e2e.rt.queues.enqueue_master("product", UNMAPPED_CODE_FIX, "usmf", reason="cli", correlation_id="t")
    pumps = {"order": lambda: QueuePump(e2e.rt, retry_after=0),
             master_job("product"): lambda: QueuePump.for_masters(e2e.rt, retry_after=0)}  # fmt: skip
    for delay in (30, 120, 120):
        for kind, pump_for in pumps.items():
            pump = pump_for()
            assert await pump.run_once() == 1
            assert pump.stats.outcomes == {"retry": 1} and pump.stats.failed_attempts == 0, pump.stats
            key = "101" if kind == "order" else f"usmf:{UNMAPPED_CODE_FIX}"
            job = await e2e.rt.state.jobs.get(kind, key)
            assert job is not None and job.state == "queued" and job.retry_at is not None
            assert (job.retry_at - clock()).total_seconds() == delay
            assert "key vault unreachable" in (job.last_error or "")
        clock.advance(delay)
    assert await e2e.poison_depth() == 0 and e2e.orders("PD-101") == []

    monkeypatch.undo()  # the secret store answers again
    outcomes = [(await pump_for().drain()).outcomes for pump_for in pumps.values()]
    assert outcomes == [{"created": 1}, {"created": 1}]
    assert len(e2e.orders("PD-101")) == 1


async def test_a_failing_line_leaves_no_header_and_the_retry_makes_the_whole_order(e2e: E2E) -> None:
    # A line's operation inside the $batch changeset fails, more often than the client retries inline
    # (RETRY_MAX_ATTEMPTS), so the message fails once; D365 rolls back the header each time.
    attempts = e2e.rt.settings.retry_max_attempts
    e2e.stack.d365.inject_fault(status=500, count=attempts, path="SalesOrderLines", where="batch_part")
    seen_between: list[int] = []

    async def observe(step: str) -> None:
        if step == "claimed":  # every attempt starts here: count the orders the last attempt left behind
            seen_between.append(len(e2e.orders("PD-104")))

    await e2e.win(104)
    pump = await e2e.drain(checkpoint=observe)
    assert pump.stats.outcomes == {"retry": 1, "created": 1}
    assert seen_between == [0, 0]  # no orphan header after the failed changesets
    assert len([r for r in e2e.stack.d365.requests() if r.path == "/data/$batch"]) == attempts + 1
    orders = e2e.orders("PD-104")
    assert len(orders) == 1 and len(orders[0]["SalesOrderLines"]) == 5


async def test_a_line_d365_refuses_fails_the_job_without_a_header(e2e: E2E) -> None:
    e2e.stack.d365.inject_fault(
        status=400, count=1, path="SalesOrderLines", where="batch_part", message="Item is blocked for sales."
    )
    await e2e.win(101)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"failed": 1}
    assert e2e.orders("PD-101") == []
    job = await e2e.job(101)
    assert job is not None and job.state == "failed"
    assert "blocked" in (job.last_error or "")


async def test_replaying_failed_jobs_over_http_reruns_them_through_the_same_rules(e2e: E2E) -> None:
    await e2e.win(108)
    await e2e.drain()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{e2e.host.base_url}/api/admin/replay",
            json={"failed": True},
            headers={"x-functions-key": e2e.host.admin_key},
        )
    assert response.status_code == 202 and response.json()["requeued"] == [108]
    pump = await e2e.drain()
    # Not fixed yet: it fails again with the same actionable reason, still without touching D365.
    assert pump.stats.outcomes == {"failed": 1}
    job = await e2e.job(108)
    assert job is not None and job.state == "failed" and REASON in (job.last_error or "")
    assert job.attempts == 2
    assert e2e.d365_writes() == []


async def test_customer_write_back_failing_transiently_creates_no_second_customer(e2e: E2E) -> None:
    """The customer is created, then writing its account to the organization fails past the inline
    retries: the message is retried, the same customer is found (not created again) and written back."""
    attempts = e2e.rt.settings.retry_max_attempts
    e2e.stack.pipedrive.inject_fault("/api/v2/organizations/4", 503, times=attempts, method="PATCH")
    await e2e.win(104)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"retry": 1, "created": 1}
    northwind = [c for c in e2e.stack.d365.records("CustomersV3") if c["OrganizationName"].startswith("Northwind")]
    assert len(northwind) == 1
    account = northwind[0]["CustomerAccount"]
    assert e2e.orders("PD-104")[0]["InvoiceCustomerAccountNumber"] == account
    org = e2e.stack.pipedrive.sim.store.get("organization", 4)
    assert org["custom_fields"][ACCOUNT_FIELD] == account


async def test_pipedrive_429_with_long_retry_after_requeues_the_build(e2e: E2E) -> None:
    e2e.stack.pipedrive.inject_fault("/api/v2/deals/101", 429, headers={"Retry-After": "120"}, method="GET")
    await e2e.win(101)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"wait": 1} and pump.stats.failed_attempts == 0
    job = await e2e.job(101)
    assert job is not None and job.state == "queued"
    assert await e2e.queue_depth() == 1
    requeued = [t for t in await e2e.rt.state.audit.trail("deal-101") if t.event == "build.requeued"]
    assert len(requeued) == 1 and requeued[0].detail["delay"] >= 100
    assert e2e.d365_writes() == []


async def test_order_number_taken_by_another_order_fails_once_with_a_reason(e2e: E2E) -> None:
    """D365 says "already exists" but no order carries our reference: not ours to adopt, and no retry helps."""
    base = d365_seed()
    other = {
        "dataAreaId": "usmf", "SalesOrderNumber": "PD101", "OrderingCustomerAccountNumber": "US-001",
        "InvoiceCustomerAccountNumber": "US-001", "CurrencyCode": "USD", "CustomersOrderReference": "manual-entry",
    }  # fmt: skip
    e2e.stack.d365.seed(
        {
            "dimension_format": base["dimension_format"],
            "units": base["units"],
            "released_products": [],
            "sales_orders": [other],
        }
    )
    await e2e.win(101)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"failed": 1}
    assert pump.stats.failed_attempts == 0 and await e2e.poison_depth() == 0
    job = await e2e.job(101)
    assert job is not None and job.state == "failed"
    assert "number_template" in (job.last_error or "") and "already exists" in (job.last_error or "")
    assert e2e.orders("PD-101") == []
    assert [
        o["CustomersOrderReference"] for o in e2e.stack.d365.sales_orders() if o["SalesOrderNumber"] == "PD101"
    ] == ["manual-entry"]


async def test_unknown_item_for_a_new_customer_fails_before_any_d365_write(e2e: E2E) -> None:
    """Deal 107's organization is new to D365; its coupling's code is not a released item. The job fails
    on the item, and no customer is created for an order that cannot be made."""
    e2e.stack.pipedrive.sim.store.update("product", 9, {"code": "NOPE-1"}, source="app")
    await e2e.win(107)
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"failed": 1}
    job = await e2e.job(107)
    assert job is not None and job.state == "failed"
    assert "'NOPE-1', which is not a released product in legal entity 'demf'" in (job.last_error or "")
    assert e2e.d365_writes() == []
