"""The job runner and the job rows it relies on, against Azurite: ambiguous inserts, lease renewal, a lost
lease on the job itself vs on another job, back-off, replays that keep or reset what a job remembers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connector.errors import PermanentError, TransientError
from connector.flows.context import FlowContext
from connector.flows.runner import JobHandle, JobRunner, Lifecycle
from connector.state import StateStore
from connector.state.jobs import LostLeaseError
from tests.fixtures.stack import VirtualClock


def ctx(state: StateStore, key: str = "1") -> FlowContext:
    return FlowContext(f"deal-{key}", "test", state.audit)


async def test_an_insert_whose_answer_was_lost_is_recognised_as_ours(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK retried an insert that had landed: the retry's 409 finds our token, and the message is sent."""
    client = await state.jobs._table.client()
    real_create = client.create_entity

    async def create_twice(entity: Any, **kwargs: Any) -> Any:
        await real_create(entity, **kwargs)  # the first try lands; its answer is lost ...
        return await real_create(entity, **kwargs)  # ... and the retry meets the row: 409

    monkeypatch.setattr(client, "create_entity", create_twice)
    decision = await state.jobs.guard_enqueue("order", "41", correlation_id="c", reason="webhook")
    assert decision.enqueue and decision.previous is None
    monkeypatch.undo()
    # Another caller's 409 on the same row is a real duplicate.
    again = await state.jobs.guard_enqueue("order", "41", correlation_id="c2", reason="poll")
    assert not again.enqueue and again.previous == "queued"


async def test_the_heartbeat_renews_the_lease_while_the_body_works(state: StateStore) -> None:
    runner = JobRunner(state.jobs, "w1", Lifecycle(lease_seconds=1.5))
    seen: list[Any] = []

    async def body(handle: JobHandle) -> str:
        first = handle.job.lease_until
        for _ in range(200):  # watch the row until the heartbeat has moved the lease twice (bounded)
            row = await state.jobs.get("order", "42")
            if row is not None and row.lease_until not in seen:
                seen.append(row.lease_until)
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.05)
        assert first is not None and max(seen) > first
        return "ok"

    run = await runner.run("order", "42", ctx(state, "42"), body, result_of=lambda v: {"v": v}, events="build")
    assert run.status == "done" and len(seen) >= 3


async def test_losing_its_own_lease_cancels_the_body_and_ends_superseded(state: StateStore) -> None:
    runner = JobRunner(state.jobs, "w1", Lifecycle(lease_seconds=1.5))
    reached = asyncio.Event()

    async def body(handle: JobHandle) -> str:
        reached.set()
        await asyncio.Event().wait()  # works "forever": only the lost lease ends it
        return "never"

    async def take_over() -> None:
        await reached.wait()
        row = await state.jobs.get("order", "43")
        assert row is not None
        await state.jobs.renew(row, -60)  # its lease ran out ...
        assert await state.jobs.claim("order", "43", worker="w2", lease_seconds=60) is not None  # ... w2 took it

    run, _ = await asyncio.gather(
        runner.run("order", "43", ctx(state, "43"), body, result_of=lambda v: {}, events="build"), take_over()
    )
    assert run.status == "superseded"
    row = await state.jobs.get("order", "43")
    assert row is not None and row.worker == "w2" and row.state == "running" and row.takeovers == 1


async def test_losing_the_lease_of_another_job_is_a_retry_not_superseded(state: StateStore) -> None:
    runner = JobRunner(state.jobs, "w1", Lifecycle(schedule=(30,)))

    async def body(handle: JobHandle) -> str:
        raise LostLeaseError("the customer job was taken over", job=("customer", "usmf:org:4"))

    run = await runner.run("order", "44", ctx(state, "44"), body, result_of=lambda v: {}, events="build")
    assert run.status == "retry" and run.delay == 30
    row = await state.jobs.get("order", "44")
    assert row is not None and row.state == "queued" and row.failures == 1 and row.retry_at is not None


async def test_back_off_grows_and_permanent_errors_fail(state: StateStore) -> None:
    clock = VirtualClock()
    runner = JobRunner(state.jobs, "w1", Lifecycle(schedule=(30, 120, 600), clock=clock))

    async def flaky(handle: JobHandle) -> str:
        raise TransientError("D365 unavailable (503)")

    delays = []
    for _ in range(4):
        run = await runner.run("order", "45", ctx(state, "45"), flaky, result_of=lambda v: {}, events="build")
        delays.append(run.delay)
        early = await runner.run("order", "45", ctx(state, "45"), flaky, result_of=lambda v: {}, events="build")
        assert early.status == "early" and early.delay == run.delay  # a message before its back-off is over
        clock.advance(run.delay)
    assert delays == [30, 120, 600, 600]

    async def refused(handle: JobHandle) -> str:
        raise PermanentError("item X is not released")

    run = await runner.run("order", "46", ctx(state, "46"), refused, result_of=lambda v: {}, events="build")
    assert run.status == "failed" and run.reason == "item X is not released"


async def test_a_replay_keeps_what_a_job_remembered_only_once_it_may_have_written(state: StateStore) -> None:
    runner = JobRunner(state.jobs, "w1", Lifecycle())

    async def plan_then_fail(handle: JobHandle) -> str:
        await handle.remember(reference="PD-47", legal_entity="usmf")
        raise PermanentError("unknown item")

    await runner.run("order", "47", ctx(state, "47"), plan_then_fail, result_of=lambda v: {}, events="build")
    await state.jobs.guard_enqueue("order", "47", correlation_id="r", reason="replay")
    row = await state.jobs.get("order", "47")
    assert row is not None and row.context is None  # nothing written: a replay plans afresh

    async def intend_then_fail(handle: JobHandle) -> str:
        await handle.remember(reference="PD-47", legal_entity="usmf")
        await handle.intend("order.create", order_number="PD47")
        raise PermanentError("refused")

    await runner.run("order", "47", ctx(state, "47"), intend_then_fail, result_of=lambda v: {}, events="build")
    await state.jobs.guard_enqueue("order", "47", correlation_id="r2", reason="replay")
    row = await state.jobs.get("order", "47")
    assert row is not None and row.context is not None and row.context["reference"] == "PD-47"
    assert row.intent is not None and row.intent["op"] == "order.create"  # the next attempt looks first
