import asyncio
import random

from connector.state import StateStore
from connector.state.audit import audit_row_key


async def test_trail_is_complete_and_ordered_after_interleaved_writes(state: StateStore) -> None:
    subjects = [f"deal-{i}" for i in range(8)]
    per_subject = 12

    async def writer(subject: str) -> None:
        for step in range(per_subject):
            await state.audit.append(subject, f"step-{step}", correlation_id=subject, detail={"n": step})
            if random.random() < 0.5:
                await asyncio.sleep(0)  # yield to interleave, not to wait for anything

    await asyncio.gather(*(writer(s) for s in subjects))
    for subject in subjects:
        trail = await state.audit.trail(subject)
        assert [e.event for e in trail] == [f"step-{n}" for n in range(per_subject)]
        assert all(e.subject == subject and e.correlation_id == subject for e in trail)
        assert [e.at for e in trail] == sorted(e.at for e in trail)


def test_row_keys_sort_in_write_order_within_one_tick() -> None:
    keys = [audit_row_key() for _ in range(2000)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


async def test_audit_detail_is_scrubbed_of_secrets(state: StateStore) -> None:
    await state.audit.append(
        "deal-1",
        "token.refreshed",
        correlation_id="c",
        level="warning",
        detail={
            "refresh_token": "r3fr3sh",
            "nested": {"client_secret": "s3cret", "ok": 1},
            "url": "https://x/api?api_token=abc123&start=0",
            "headers": ["Authorization: Bearer eyJabc.def"],
        },
    )
    (entry,) = await state.audit.trail("deal-1")
    text = entry.model_dump_json()
    for secret in ("r3fr3sh", "s3cret", "abc123", "eyJabc.def"):
        assert secret not in text
    assert entry.detail["nested"]["ok"] == 1 and entry.level == "warning"


async def test_checkpoints_and_idmap(state: StateStore) -> None:
    assert await state.checkpoints.get("poll.deals") is None
    await state.checkpoints.set("poll.deals", "2026-11-25T10:00:00Z")
    await state.checkpoints.set("poll.deals", "2026-11-25T10:05:00Z")
    assert await state.checkpoints.get("poll.deals") == "2026-11-25T10:05:00Z"
    assert await state.idmap.get("customer", "42") is None
    await state.idmap.put("customer", "42", "US-001", "hash1")
    await state.idmap.put("customer", "42", "US-001", "hash2")
    await state.idmap.put("customer", "43", "US-002")
    entry = await state.idmap.get("customer", "42")
    assert entry is not None and (entry.target_key, entry.content_hash) == ("US-001", "hash2")
    assert sorted(e.source_key for e in await state.idmap.all("customer")) == ["42", "43"]
