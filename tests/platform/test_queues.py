import base64
import json
from pathlib import Path

import azure.functions as func
import pytest
from azure.storage.queue.aio import QueueClient

from connector.queues import MalformedMessage, MasterPush, OrderBuild, Queues, decode_message, encode_message
from connector.state import StateStore

ROOT = Path(__file__).resolve().parents[2]


async def raw_messages(storage_conn: str, queue: str) -> list[str]:
    """What is on the wire, read with a plain client (no decode policy)."""
    async with QueueClient.from_connection_string(storage_conn, queue) as client:
        return [str(m.content) for m in await client.peek_messages(max_messages=32)]


async def test_same_job_key_twice_gives_one_message(queues: Queues, state: StateStore, storage_conn: str) -> None:
    assert await queues.enqueue_order(101, reason="webhook", correlation_id="c1") is True
    assert await queues.enqueue_order(101, reason="poll", correlation_id="c2") is False
    assert await queues.enqueue_order(102, reason="poll", correlation_id="c3") is True
    wire = await raw_messages(storage_conn, queues.order_queue)
    assert len(wire) == 2
    events = [e.event for e in await state.audit.trail("deal-101")]
    assert events == ["enqueue.queued", "enqueue.skipped"]


async def test_done_order_is_not_enqueued_but_failed_one_is_replayed(queues: Queues, state: StateStore) -> None:
    await queues.enqueue_order(5, reason="webhook", correlation_id="c")
    job = await state.jobs.claim("order", "5", worker="w", lease_seconds=30)
    assert job is not None
    await state.jobs.fail(job, "deal has no products")
    assert await queues.enqueue_order(5, reason="replay", correlation_id="r") is True
    job = await state.jobs.claim("order", "5", worker="w", lease_seconds=30)
    assert job is not None
    await state.jobs.complete(job, {"order": "SO-5"})
    assert await queues.enqueue_order(5, reason="replay", correlation_id="r2") is False


async def test_enqueued_message_is_what_the_trigger_decodes(queues: Queues, storage_conn: str) -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["queues"]["messageEncoding"] == "base64"
    await queues.enqueue_order(77, reason="demo", correlation_id="corr-77")
    (wire,) = await raw_messages(storage_conn, queues.order_queue)
    # The trigger base64-decodes the stored text and hands the bytes to the function.
    body = base64.b64decode(wire, validate=True)
    trigger_msg = func.QueueMessage(id="1", body=body)
    decoded = decode_message(trigger_msg.get_body().decode())
    assert decoded == OrderBuild(deal_id=77, reason="demo", correlation_id="corr-77")


async def test_master_push_dedupes_while_queued_and_reopens_when_done(queues: Queues, state: StateStore) -> None:
    assert await queues.enqueue_master("product", "A/1", "USMF", reason="event", correlation_id="c")
    assert not await queues.enqueue_master("product", "A/1", "usmf", reason="timer", correlation_id="c")
    job = await state.jobs.claim("master-product", "usmf:A/1", worker="w", lease_seconds=30)
    assert job is not None
    await state.jobs.complete(job, {})
    assert await queues.enqueue_master("product", "A/1", "USMF", reason="event", correlation_id="c2")
    assert await queues.depth(queues.master_queue) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json{", "not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"kind": "order.build", "deal_id": 1}', "missing field 'v'"),
        ('{"v": 2, "kind": "order.build", "deal_id": 1, "reason": "poll", "correlation_id": "c"}', "unknown version 2"),
        ('{"v": 1, "kind": "order.build", "reason": "poll", "correlation_id": "c"}', "deal_id: missing field"),
        ('{"v": 1, "kind": "order.build", "deal_id": "x", "reason": "poll", "correlation_id": "c"}', "deal_id"),
        (
            '{"v": 1, "kind": "order.build", "deal_id": 1, "reason": "poll", "correlation_id": "c", "email": "a@b"}',
            "email",
        ),
        ('{"v": 1, "kind": "deal.delete", "deal_id": 1}', "kind"),
    ],
)
def test_malformed_messages_say_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        decode_message(text)
    assert expected in str(info.value)


def test_messages_round_trip() -> None:
    msg = MasterPush(entity="customer", key="US-001", legal_entity="usmf", reason="timer", correlation_id="c")
    assert decode_message(encode_message(msg)) == msg


async def test_malformed_message_is_moved_aside_audited_and_kept(queues: Queues, state: StateStore) -> None:
    await queues.move_aside("not json{", "queue message is not JSON")
    assert await queues.poison_depth(queues.order_queue) == 1
    (parked,) = await queues.peek_poison(queues.order_queue)
    assert parked.text == "not json{" and parked.message is None and "not JSON" in (parked.error or "")
    trail = await state.audit.trail(f"queue-{queues.order_queue}")
    assert [e.event for e in trail] == ["message.malformed"] and trail[0].level == "error"
    # requeue leaves it parked: it is never retried forever
    assert await queues.requeue_poison(queues.order_queue) == 0
    assert await queues.poison_depth(queues.order_queue) == 1


async def test_poison_requeue_reopens_failed_job_and_drains(queues: Queues, state: StateStore) -> None:
    msg = OrderBuild(deal_id=900, reason="webhook", correlation_id="c")
    await queues.enqueue_order(900, reason="webhook", correlation_id="c")
    job = await state.jobs.claim("order", "900", worker="w", lease_seconds=30)
    assert job is not None
    await state.jobs.fail(job, "kept failing")
    # what the runtime does after maxDequeueCount: the same text lands in <queue>-poison
    await queues.send(msg, queue=f"{queues.order_queue}-poison")
    (parked,) = await queues.peek_poison(queues.order_queue)
    assert parked.message == msg
    assert await queues.requeue_poison(queues.order_queue) == 1
    assert await queues.poison_depth(queues.order_queue) == 0
    reopened = await state.jobs.get("order", "900")
    assert reopened is not None and reopened.state == "queued"
    assert await state.jobs.claim("order", "900", worker="w2", lease_seconds=30) is not None


async def test_delayed_message_is_invisible_until_due(queues: Queues, storage_conn: str) -> None:
    await queues.requeue(OrderBuild(deal_id=3, reason="poll", correlation_id="c"), delay=300)
    assert await raw_messages(storage_conn, queues.order_queue) == []
    assert await queues.depth(queues.order_queue) == 1


def dead_storage() -> str:
    from connector.dev.sandbox.azurite import ACCOUNT, ACCOUNT_KEY, free_port

    port = free_port()
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT};TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


async def test_failed_send_undoes_the_guard_so_a_retry_is_not_skipped(
    state: StateStore, queues: Queues, unique: str
) -> None:
    from azure.storage.queue.aio import QueueServiceClient

    from connector.errors import TransientError

    broken = Queues(
        QueueServiceClient.from_connection_string(dead_storage(), retry_total=0), state, order_queue=queues.order_queue
    )
    try:
        with pytest.raises(TransientError, match="unreachable"):
            await broken.enqueue_order(31, reason="webhook", correlation_id="c")
    finally:
        await broken.close()
    assert await state.jobs.get("order", "31") is None
    assert await queues.enqueue_order(31, reason="webhook", correlation_id="c2") is True


async def test_unreachable_table_storage_is_one_clear_error(unique: str) -> None:
    from connector.errors import TransientError
    from connector.settings import TableNames

    store = StateStore.from_connection_string(dead_storage(), names=TableNames.with_prefix(unique), retry_total=0)
    try:
        with pytest.raises(TransientError) as info:
            await store.jobs.guard_enqueue("order", "1", correlation_id="c", reason="poll")
        assert "storage unreachable at http://127.0.0.1:" in str(info.value)
        assert "AccountKey" not in str(info.value)
    finally:
        await store.close()


async def test_concurrent_enqueues_of_one_deal_give_one_message(queues: Queues, storage_conn: str) -> None:
    import asyncio

    for deal_id in range(300, 305):
        sent = await asyncio.gather(
            *(queues.enqueue_order(deal_id, reason="webhook", correlation_id=f"c{i}") for i in range(5))
        )
        assert sum(sent) == 1
    assert len(await raw_messages(storage_conn, queues.order_queue)) == 5
