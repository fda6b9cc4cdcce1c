"""No deal stranded. Real worker processes killed (SIGKILL) between the job insert and the queue
send, between the header and the lines, and after the D365 create; the reconciler or the retry finishes
each deal exactly once. A customer job's lease lost mid-create makes the order job retry, not vanish."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from connector.dev.sandbox.azurite import Azurite
from connector.flows.context import step_subject
from connector.flows.reconciler import reconcile_jobs
from connector.state.job_row import MAX_RESEND_DOUBLINGS
from connector.state.tables import now
from tests.e2e.matrix import CELLS, Cell, assert_exactly_once, extra_deals, open_cell
from tests.fixtures.stack import E2E

ROOT = Path(__file__).resolve().parents[2]


async def kill_at(step: str, deal_id: int) -> None:
    """Run one worker process that is SIGKILLed when the deal's build reaches `step`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.e2e.kill_worker", step, str(deal_id), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL


async def reconcile_later(e2e: E2E) -> list[str]:
    """The reconciler as it runs once the killed worker's lease and the grace period are over."""
    wait = e2e.rt.settings.job_lease_seconds + e2e.rt.settings.reconcile_grace_seconds + 1
    later = now() + timedelta(seconds=wait)
    e2e.rt.lifecycle.clock = lambda: later  # the workers that run the re-sent message live then too
    return (await reconcile_jobs(await e2e.rt.requeue_deps(), at=later)).requeued


async def test_a_job_inserted_but_never_sent_is_requeued_by_the_reconciler(e2e: E2E) -> None:
    # The worker died between the job insert and the queue send: a queued row and no message.
    decision = await e2e.rt.state.jobs.guard_enqueue("order", "101", correlation_id="lost", reason="webhook")
    assert decision.enqueue and await e2e.queue_depth() == 0
    e2e.stack.pipedrive.set_deal_status(101, "won")
    assert (await reconcile_jobs(await e2e.rt.requeue_deps())).requeued == []  # within the grace period: left alone
    assert await reconcile_later(e2e) == ["order/101"]
    assert await reconcile_later(e2e) == []  # touched: not sent again before another grace period
    pump = await e2e.drain()
    assert pump.stats.outcomes == {"created": 1}
    assert len(e2e.orders("PD-101")) == 1
    assert "reconcile.requeued" in await e2e.events(101)


async def test_each_resend_of_a_job_doubles_the_wait_before_the_next(e2e: E2E) -> None:
    # A message behind a long backlog is late, not lost: re-sending it every grace period would only add to
    # the backlog it waits in. The wait doubles with each re-send and starts again once a message arrives.
    await e2e.rt.state.jobs.guard_enqueue("order", "103", correlation_id="lost", reason="webhook")
    grace = e2e.rt.settings.reconcile_grace_seconds
    deps = await e2e.rt.requeue_deps()
    at = now() + timedelta(seconds=grace + 1)
    sent_at = []
    for resend in range(5):
        wait = grace * 2 ** min(resend, MAX_RESEND_DOUBLINGS)
        if resend:
            early = at + timedelta(seconds=wait - 2)
            assert (await reconcile_jobs(deps, at=early)).requeued == [], resend  # the message may still come
            at += timedelta(seconds=wait + 1)
        assert (await reconcile_jobs(deps, at=at)).requeued == ["order/103"], resend
        sent_at.append(at)
    job = await e2e.rt.state.jobs.get("order", "103")
    assert job is not None and job.resends == 5
    details = [e.detail for e in await e2e.rt.state.audit.trail("deal-103") if e.event == "reconcile.requeued"]
    assert [d["resends"] for d in details] == [1, 2, 3, 4, 5]
    # The guard's own re-send (a webhook for a stranded job) counts the same way...
    again = await e2e.rt.state.jobs.guard_enqueue("order", "103", correlation_id="hook", reason="webhook",
                                                  stale_after=grace)  # fmt: skip
    assert not again.enqueue  # ...and it is not stranded yet: the last re-send was just now
    # A claim proves a message arrived: the next lost one is re-sent after one grace period again.
    claimed = await e2e.rt.state.jobs.claim("order", "103", worker="w", lease_seconds=1, at=sent_at[-1])
    assert claimed is not None and claimed.resends == 0


async def test_a_job_waiting_out_a_back_off_is_not_reconciled(e2e: E2E) -> None:
    decision = await e2e.rt.state.jobs.guard_enqueue("order", "102", correlation_id="c", reason="webhook")
    job = await e2e.rt.state.jobs.save(decision.job, retry_at=now() + timedelta(hours=2))
    assert job.retry_at is not None
    assert (await reconcile_jobs(await e2e.rt.requeue_deps(), at=now() + timedelta(hours=1))).requeued == []


KILLS = {"from_deal": ["after_create"], "d365_sequence": ["after_header", "after_create"]}


@pytest.mark.parametrize(
    "cell", [c for c in CELLS if c.reference_field == "CustomersOrderReference"], ids=lambda c: c.id
)
async def test_a_worker_killed_mid_build_is_finished_by_the_reconciler_exactly_once(
    cell: Cell, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    steps = KILLS[cell.numbering]
    deals = extra_deals(len(steps))
    async with open_cell(cell, azurite, monkeypatch, tmp_path, deals) as e2e:
        for deal, step in zip(deals, steps, strict=True):
            await e2e.win(deal.deal_id)
            await kill_at(step, deal.deal_id)
            job = await e2e.job(deal.deal_id)
            assert (job.state == "running" and job.intent is None) or step == "after_header"
            # The message is invisible (its worker died holding it); the job's lease runs out; the reconciler
            # sends the message again and a live worker takes the job over.
            assert await reconcile_later(e2e) == [f"order/{deal.deal_id}"]
            await e2e.rt.state.jobs.renew(await e2e.job(deal.deal_id), -1)  # the dead worker's lease is over
            pump = await e2e.drain()
            assert pump.stats.outcomes in ({"created": 1}, {"adopted": 1}), (step, pump.stats)
            job = await e2e.job(deal.deal_id)
            assert job.state == "done" and job.takeovers == 1
        assert_exactly_once(e2e, cell, deals)


async def test_a_customer_lease_lost_mid_create_retries_the_order_job(e2e: E2E) -> None:
    """Worker A creates Northwind's customer while its customer-job lease runs out and worker B takes that
    job over: A's order job is released and retried (never left running as superseded), one customer."""
    key = "usmf:org:4"
    taken: list[str] = []

    async def lose_customer_lease(step: str) -> None:
        if step == "before_customer_create" and not taken:
            job = await e2e.rt.state.jobs.get("customer", key)
            await e2e.rt.state.jobs.renew(job, -60)
            b = await e2e.rt.state.jobs.claim("customer", key, worker="worker-b", lease_seconds=60)
            assert b is not None
            taken.append("b")
            await e2e.rt.state.jobs.release(b, "worker B gave up")  # B stops; A's create goes on

    await e2e.win(104)
    pump = await e2e.drain(checkpoint=lose_customer_lease)
    assert taken == ["b"]
    assert pump.stats.outcomes == {"retry": 1, "created": 1}, pump.stats
    northwind = [c for c in e2e.stack.d365.records("CustomersV3") if c["OrganizationName"].startswith("Northwind")]
    assert len(northwind) == 1
    assert len(e2e.orders("PD-104")) == 1
    events = await e2e.events(104)
    assert "build.superseded" not in events and "build.retry" in events
    matched = [t for t in await e2e.rt.state.audit.trail("deal-104") if t.event == "customer.matched"]
    assert matched and matched[0].detail["via"] == "re-check after a lost answer"


async def test_status_names_the_stuck_poisoned_and_failed_deals(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.e2e.test_cli import cli

    # 103: inserted, never sent (stuck). 108: fails with a reason. 109: a bug every time -> poisoned, failed.
    await e2e.rt.state.jobs.guard_enqueue("order", "103", correlation_id="lost", reason="webhook")

    async def bug(step: str) -> None:
        if step == "deal_read" and step_subject.get() == "deal-109":
            raise RuntimeError("a bug")

    await e2e.win(108, 109)
    await e2e.drain(checkpoint=bug)
    monkeypatch.setitem(e2e.stack.env, "RECONCILE_GRACE_SECONDS", "0")
    code, status, _ = await cli(e2e, "status", "--json")
    assert code == 0
    assert [row["deal_id"] for row in status["stuck"]] == ["103"]
    assert status["poisoned_deals"] == ["109"]
    assert sorted(row["deal_id"] for row in status["failed"]) == ["108", "109"]
