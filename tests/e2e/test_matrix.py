"""Invariants 1-3 in every supported configuration (tests/e2e/matrix.py): each numbering mode x each
reference field, with deals in the default and in a second company. Per cell: duplicate, late and racing
deliveries with two workers; a crash at every step of the build; a lost answer at every D365 write."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import connector.flows
from connector.dev.localhost import QueuePump
from connector.dev.sandbox.azurite import Azurite
from connector.flows.poll import poll_won_deals
from connector.queues import OrderBuild
from tests.e2e.matrix import (
    ALL_STEPS,
    CELLS,
    Cell,
    ExtraDeal,
    assert_exactly_once,
    crash_each,
    extra_deals,
    open_cell,
)
from tests.e2e.test_exactly_once import post_webhook
from tests.fixtures.stack import E2E, VirtualClock

pytestmark = pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)


def test_every_checkpoint_in_the_flows_is_crash_tested(cell: Cell) -> None:
    """A step added to the flows without a place in the matrix would leave a gap in invariant 1."""
    flows = Path(connector.flows.__file__).parent
    found = {m for f in flows.glob("*.py") for m in re.findall(r'\.step\("([a-z_]+)"\)', f.read_text())}
    assert found == set(ALL_STEPS)
    assert set(cell.steps) <= found


async def test_duplicate_late_and_racing_deliveries_with_two_workers(
    cell: Cell, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deals = extra_deals(4)  # two per company
    a, b, c, d = (deal.deal_id for deal in deals)
    async with open_cell(cell, azurite, monkeypatch, tmp_path, deals) as e2e:
        pipedrive = e2e.stack.pipedrive
        await e2e.register_webhook()
        pipedrive.webhook_fault("duplicate")
        pipedrive.set_deal_status(a, "won")  # delivered twice
        pipedrive.set_deal_status(b, "won")
        pipedrive.set_deal_status(c, "won")
        pipedrive.set_deal_status(d, "won")
        deliveries = await pipedrive.wait_for_deliveries(5, ok_only=True)
        won_c = next(x for x in deliveries if x["body"].get("data", {}).get("id") == c or _v1_id(x) == c)
        # A racing poll finds them all queued; a stray message for b slipped around the guard anyway.
        assert (await poll_won_deals(await e2e.rt.poll_deps())).enqueued == 0
        await e2e.rt.queues.send(OrderBuild(deal_id=b, reason="poll", correlation_id="race"))
        # Two workers on d at the same moment (its webhook's message and another one).
        await e2e.rt.queues.send(OrderBuild(deal_id=d, reason="replay", correlation_id="second-worker"))

        pumps = [QueuePump(e2e.rt, batch_size=2, retry_after=0) for _ in range(2)]
        await asyncio.gather(*(p.drain() for p in pumps))
        assert_exactly_once(e2e, cell, deals)
        # A late redelivery of c's won event after its order exists: acknowledged as a duplicate.
        late = await post_webhook(e2e, won_c["body"])
        assert late.status_code == 200 and late.json()["status"] == "duplicate"
        # Reopened and won again: no second order either.
        pipedrive.set_deal_status(a, "open")
        pipedrive.set_deal_status(a, "won")
        await pipedrive.wait_for_deliveries(7, ok_only=True)
        await QueuePump(e2e.rt, retry_after=0).drain()
        assert_exactly_once(e2e, cell, deals)


def _v1_id(delivery: dict[str, object]) -> int | None:
    body = delivery["body"]
    current = body.get("current") if isinstance(body, dict) else None
    return current.get("id") if isinstance(current, dict) else None


async def test_a_crash_at_every_step_still_gives_exactly_one_order(
    cell: Cell, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deals = extra_deals(len(cell.steps))
    plan = {deal.deal_id: step for deal, step in zip(deals, cell.steps, strict=True)}
    async with open_cell(cell, azurite, monkeypatch, tmp_path, deals) as e2e:
        await e2e.win(*plan)
        hook, fired = crash_each(plan)
        await e2e.drain(checkpoint=hook)
        assert sorted(fired) == sorted(plan.items())
        assert_exactly_once(e2e, cell, deals)
        for deal_id, step in plan.items():
            events = await e2e.events(deal_id)
            assert events.count("build.done") == 1, (step, events)
            assert step == "recorded" or "build.retry" in events, (step, events)
            job = await e2e.job(deal_id)
            assert job.state == "done" and job.intent is None


# (write, fault, person-only): every D365 create of the cell's numbering mode, with each way to lose its answer
# ("truncated": a 2xx whose body was cut short, so the record was saved but the answer cannot be read).
LOST = {
    "from_deal": [
        ("CustomersV3", "reset", False), ("CustomersV3", "late", True), ("$batch", "reset", False),
        ("$batch", "502", False), ("$batch", "504", False), ("$batch", "late", False), ("$batch", "truncated", False),
        ("CustomersV3", "truncated", False),
    ],
    "d365_sequence": [
        ("CustomersV3", "502", False), ("CustomersV3", "late", True), ("SalesOrderHeadersV2", "reset", False),
        ("SalesOrderHeadersV2", "504", False), ("SalesOrderHeadersV2", "late", False), ("$batch", "502", False),
        ("$batch", "reset", False), ("$batch", "late", False), ("SalesOrderHeadersV2", "truncated", False),
        ("$batch", "truncated", False),
    ],
}  # fmt: skip
SETTLE = 60.0


async def test_a_lost_answer_at_every_write_still_gives_exactly_one(
    cell: Cell, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cases = LOST[cell.numbering]
    deals = [
        ExtraDeal(deal.deal_id, deal.pipeline_id, person_only, deal.lines)
        for deal, (_, _, person_only) in zip(extra_deals(len(cases)), cases, strict=True)
    ]
    env = {"D365_SETTLE_SECONDS": str(SETTLE), "D365_TIMEOUT_SECONDS": "1.5"}
    async with open_cell(cell, azurite, monkeypatch, tmp_path, deals, **env) as e2e:
        clock = VirtualClock()
        e2e.rt.lifecycle.clock = clock
        e2e.rt.lifecycle.requeue_scale = 0  # virtual time: re-queued messages are visible at once
        for deal, (write, kind, _) in zip(deals, cases, strict=True):
            await _lose_one_answer(e2e, clock, deal, write, kind)
        assert_exactly_once(e2e, cell, deals)


async def _lose_one_answer(e2e: E2E, clock: VirtualClock, deal: ExtraDeal, write: str, kind: str) -> None:
    lost = {"commit_delay": 30.0} if kind == "late" else {"after_commit": kind}
    e2e.stack.d365.inject_fault(method="POST", path=f"/data/{write}", count=1, **lost)
    posts = len(e2e.d365_writes(f"/data/{write}"))
    await e2e.win(deal.deal_id)
    pump = QueuePump(e2e.rt, retry_after=0)
    await pump.run_once()
    assert pump.stats.outcomes == {"retry": 1}, (write, kind, pump.stats)
    what = "customer" if write == "CustomersV3" else "order"
    assert f"{what}.answer_lost" in await e2e.events(deal.deal_id)
    if kind == "late":
        # Before the settle time the answer's fate is unknown: the retry arriving now is early (its back-off is
        # not over) and goes back to the queue without running; nothing is written again.
        again = QueuePump(e2e.rt, retry_after=0)
        await again.run_once()
        assert again.stats.outcomes == {"early": 1}, again.stats
        assert await e2e.stack.d365.release_late_commits() == 1  # the write lands after the client gave up
        assert len(e2e.d365_writes(f"/data/{write}")) == posts + 1  # and it is the only one sent
    clock.advance(SETTLE + 1)
    done = await QueuePump(e2e.rt, retry_after=0).drain()
    assert done.outcomes in ({"created": 1}, {"adopted": 1}), done
    trail = await e2e.rt.state.audit.trail(f"deal-{deal.deal_id}")
    rechecked = [t for t in trail if t.detail.get("via") == "re-check after a lost answer"]
    assert rechecked, [(t.event, t.detail) for t in trail]
    expected = {"CustomersV3": "customer.matched", "$batch": "order.adopted", "SalesOrderHeadersV2": "order.adopted"}
    if write == "$batch" and e2e.rt.mapping.order.numbering == "d365_sequence":
        expected["$batch"] = "order.lines_rechecked"  # the header was known: only its lines were looked for
    assert rechecked[0].event == expected[write]
