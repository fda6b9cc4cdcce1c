import asyncio

import pytest

from connector.state import LostLeaseError, StateStore


async def test_concurrent_claims_have_exactly_one_winner_every_time(state: StateStore) -> None:
    for round_no in range(25):
        key = f"deal-{round_no}"
        await state.jobs.guard_enqueue("order", key, correlation_id="c", reason="webhook")
        results = await asyncio.gather(
            *(state.jobs.claim("order", key, worker=f"w{i}", lease_seconds=60) for i in range(4))
        )
        winners = [job for job in results if job is not None]
        assert len(winners) == 1, f"round {round_no}: {len(winners)} winners"
        stored = await state.jobs.get("order", key)
        assert stored is not None and stored.state == "running"
        assert stored.worker == winners[0].worker and stored.attempts == 1


async def test_concurrent_claims_without_a_prior_row_also_have_one_winner(state: StateStore) -> None:
    for round_no in range(10):
        results = await asyncio.gather(
            *(state.jobs.claim("order", f"new{round_no}", worker=f"w{i}", lease_seconds=60) for i in range(3))
        )
        assert sum(job is not None for job in results) == 1


async def test_expired_lease_is_taken_over_and_live_lease_is_not(state: StateStore) -> None:
    await state.jobs.guard_enqueue("order", "1", correlation_id="c", reason="poll")
    first = await state.jobs.claim("order", "1", worker="crashed", lease_seconds=0)
    assert first is not None
    taken = await state.jobs.claim("order", "1", worker="second", lease_seconds=60)
    assert taken is not None and taken.worker == "second" and taken.attempts == 2
    # the crashed worker's late write must not land
    with pytest.raises(LostLeaseError):
        await state.jobs.complete(first, {"order": "SO-1"})
    # now live: a third worker gets nothing
    assert await state.jobs.claim("order", "1", worker="third", lease_seconds=60) is None
    done = await state.jobs.complete(taken, {"order": "SO-2"})
    assert done.state == "done"
    stored = await state.jobs.get("order", "1")
    assert stored is not None and stored.result == {"order": "SO-2"} and stored.worker == "second"


async def test_done_job_is_not_claimed_and_not_reenqueued(state: StateStore) -> None:
    await state.jobs.guard_enqueue("order", "7", correlation_id="c", reason="webhook")
    job = await state.jobs.claim("order", "7", worker="w", lease_seconds=60)
    assert job is not None
    await state.jobs.complete(job, {"order": "SO-7"})
    assert await state.jobs.claim("order", "7", worker="w2", lease_seconds=60) is None
    decision = await state.jobs.guard_enqueue("order", "7", correlation_id="c2", reason="replay")
    assert not decision.enqueue and decision.previous == "done"


async def test_failed_job_is_reopened_by_guard_and_release_requeues(state: StateStore) -> None:
    await state.jobs.guard_enqueue("order", "9", correlation_id="c", reason="webhook")
    job = await state.jobs.claim("order", "9", worker="w", lease_seconds=60)
    assert job is not None
    released = await state.jobs.release(job, "D365 503")
    assert released.state == "queued" and released.last_error == "D365 503"
    job = await state.jobs.claim("order", "9", worker="w", lease_seconds=60)
    assert job is not None and job.attempts == 2
    await state.jobs.fail(job, "unknown item X", {"item": "X", "password": "hunter2"})
    failed = await state.jobs.get("order", "9")
    assert failed is not None and failed.state == "failed" and failed.last_error == "unknown item X"
    assert failed.detail == {"item": "X", "password": "***"}
    assert await state.jobs.claim("order", "9", worker="w", lease_seconds=60) is None
    decision = await state.jobs.guard_enqueue("order", "9", correlation_id="c3", reason="replay")
    assert decision.enqueue and decision.previous == "failed"
    assert [j.key for j in await state.jobs.list(kind="order", state="queued")] == ["9"]


async def test_stale_queued_job_may_be_enqueued_again(state: StateStore) -> None:
    await state.jobs.guard_enqueue("order", "11", correlation_id="c", reason="webhook")
    again = await state.jobs.guard_enqueue("order", "11", correlation_id="c", reason="poll", stale_after=3600)
    assert not again.enqueue and again.previous == "queued"
    stale = await state.jobs.guard_enqueue("order", "11", correlation_id="c", reason="poll", stale_after=0)
    assert stale.enqueue and stale.previous == "queued"


async def test_keys_with_forbidden_characters_round_trip(state: StateStore) -> None:
    key = "usmf:A/B#C?D\\E%F"
    await state.jobs.guard_enqueue("master-product", key, correlation_id="c", reason="event")
    job = await state.jobs.get("master-product", key)
    assert job is not None and job.key == key
    await state.idmap.put("product", key, "PD-1", "h1")
    entry = await state.idmap.get("product", key)
    assert entry is not None and entry.source_key == key and entry.target_key == "PD-1"


async def test_hand_edited_job_row_is_a_clear_error(state: StateStore) -> None:
    from azure.data.tables import UpdateMode

    from connector.errors import ProtocolError

    await state.jobs.guard_enqueue("order", "55", correlation_id="c", reason="poll")
    client = await state.jobs._table.client()
    await client.upsert_entity({"PartitionKey": "order", "RowKey": "55", "State": "paused"}, mode=UpdateMode.MERGE)
    with pytest.raises(ProtocolError, match="job row order/55 is malformed"):
        await state.jobs.get("order", "55")
