"""The job guard for many keys of one kind at once (bulk replays): batched reads and transactions.

`JobStore.guard_enqueue` costs two or three round trips per key; a 1,000-deal replay would spend seconds
on them. Here the rows are read 15 keys per query (Table Storage's limit of discrete comparisons in one
filter) and written 100 per entity-group transaction (its limit; one kind = one partition). The rules are
those of `guard_enqueue`: new -> queued, failed (or done with `reopen_done`, or stale) -> queued again,
anything else is skipped. A transaction that meets a row changed since it was read fails whole (409/412),
so its keys are read and decided again; nothing is ever half-written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

from connector.state.job_row import Job, reopened, reopens
from connector.state.jobs import EnqueueDecision, JobStore, LostLeaseError
from connector.state.tables import encode_key, now, storage_errors

READ_CHUNK = 15  # "no more than 15 discrete comparisons are permitted within a $filter string"
WRITE_CHUNK = 100  # operations per entity-group transaction
CONCURRENCY = 8
_MAX_ROUNDS = 10


async def guard_enqueue_many(
    jobs: JobStore,
    kind: str,
    keys: Sequence[str],
    *,
    correlation_id: str,
    reason: str,
    reopen_done: bool = False,
    stale_after: float | None = None,
) -> dict[str, EnqueueDecision]:
    """One decision per distinct key, as `guard_enqueue` would make it, in a few round trips."""
    table = await jobs._table.client()  # same package: the store's table, not a second client
    where = jobs._table.where
    limit = asyncio.Semaphore(CONCURRENCY)
    decisions: dict[str, EnqueueDecision] = {}
    pending = list(dict.fromkeys(keys))
    token = uuid.uuid4().hex  # marks our rows: a transaction whose answer was lost is recognised as ours

    async def read(chunk: list[str]) -> list[Job]:
        clauses = " or ".join(f"RowKey eq @k{i}" for i in range(len(chunk)))
        params = {"pk": encode_key(kind), **{f"k{i}": encode_key(key) for i, key in enumerate(chunk)}}
        async with limit, storage_errors(f"reading {kind} jobs", where):
            pages = table.query_entities(
                f"PartitionKey eq @pk and ( {clauses} )", parameters=params
            )  # spaces: the SDK splits on them
            return [Job.from_entity(entity) async for entity in pages]

    async def write(plan: list[tuple[str, Job, Job | None]]) -> list[str]:
        """Submit one transaction; the keys to decide again when it lost a race (else [])."""
        operations: list[Any] = []
        for _key, job, current in plan:
            if current is None:
                operations.append(("create", job.to_entity()))
            else:
                options = {
                    "mode": UpdateMode.REPLACE,
                    "etag": current.etag,
                    "match_condition": MatchConditions.IfNotModified,
                }
                operations.append(("update", job.to_entity(), options))
        async with limit:
            try:
                async with storage_errors(f"queueing {len(plan)} {kind} jobs", where):
                    answers = await table.submit_transaction(operations)
            except HttpResponseError as exc:
                if exc.status_code in (404, 409, 412):
                    return [key for key, _job, _current in plan]
                raise
        for (key, job, current), answer in zip(plan, answers, strict=True):
            decisions[key] = EnqueueDecision(
                enqueue=True,
                previous=current.state if current else None,
                job=job.model_copy(update={"etag": answer.get("etag", "")}),
            )
        return []

    for _ in range(_MAX_ROUNDS):
        if not pending:
            return decisions
        chunks = [pending[i : i + READ_CHUNK] for i in range(0, len(pending), READ_CHUNK)]
        found = {job.key: job for rows in await asyncio.gather(*(read(c) for c in chunks)) for job in rows}
        stamp = now()
        plan: list[tuple[str, Job, Job | None]] = []
        for key in pending:
            current = found.get(key)
            if current is not None and current.enqueue_token == token and current.state == "queued":
                decisions[key] = EnqueueDecision(enqueue=True, previous=None, job=current)  # ours, answer lost
                continue
            if current is not None and not reopens(current, reopen_done=reopen_done, stale_after=stale_after):
                decisions[key] = EnqueueDecision(enqueue=False, previous=current.state, job=current)
                continue
            base = current or Job(kind=kind, key=key, state="queued", created=stamp)
            fresh = base.model_copy(
                update={
                    "state": "queued",
                    "worker": None,
                    "lease_until": None,
                    "correlation_id": correlation_id,
                    "reason": reason,
                    "updated": stamp,
                    "enqueue_token": token,
                    **(reopened(current) if current is not None and current.state in ("failed", "done") else {}),
                }
            )
            plan.append((key, fresh, current))
        batches = [plan[i : i + WRITE_CHUNK] for i in range(0, len(plan), WRITE_CHUNK)]
        pending = [key for retry in await asyncio.gather(*(write(b) for b in batches)) for key in retry]
    raise LostLeaseError(f"{len(pending)} {kind} jobs kept changing while queueing them; try again")
