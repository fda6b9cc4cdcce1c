"""The job store: the dedupe guard and the claim/lease protocol that makes "one deal, one order" hold.

Creating a row is an insert that fails with 409 on an existing key; every later transition is
ETag-conditional, so two workers can never both believe they own a job. The row itself (fields, states,
what a flow remembers across attempts) is `connector.state.job_row`.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, ConfigDict

from connector.errors import ConnectorError
from connector.state.job_row import Job, JobState, reopened, reopens
from connector.state.tables import LazyTable, encode_key, now, storage_errors

# Job kinds (the PartitionKey): one place, so a dedupe key is never spelled two ways.
ORDER_JOB = "order"  # key: deal id
CUSTOMER_JOB = "customer"  # key: <legal entity>:org:<id> | <legal entity>:person:<id>
LOCK_JOB = "pd-create"  # key: the Pipedrive identity being written (a cross-instance lock)
EVENT_JOB = "d365-event"  # key: the business event's dedupe key


PROBE_JOB = "doctor"  # never written: the doctor reads a row of it to prove the table answers
_MASTER_PREFIX = "master-"


def master_job(entity: str) -> str:
    """The job kind of a master push of `entity` (product, customer); key: <legal entity>:<D365 key>."""
    return f"{_MASTER_PREFIX}{entity}"


def master_entity(kind: str) -> str | None:
    """The entity whose master push `kind` is (`master_job`'s inverse); None for any other kind."""
    return kind.removeprefix(_MASTER_PREFIX) if kind.startswith(_MASTER_PREFIX) else None


MASTER_JOBS = (master_job("product"), master_job("customer"))
QUEUED_KINDS = (ORDER_JOB, *MASTER_JOBS)  # jobs that have queue messages
_MAX_RACE_ROUNDS = 20


class LostLeaseError(ConnectorError):
    """Another worker (or a replay) changed the job since we read it; our view of it is stale.

    The flow must stop touching the job: its new owner carries on. `job` names the row (kind, key), so a
    flow can tell its own job from another it used on the way (a customer resolution, a lock).
    """

    def __init__(self, message: str, *, job: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.job = job


class EnqueueDecision(BaseModel):
    """What guard_enqueue decided: send a message or not, and the state it found (None = new job)."""

    model_config = ConfigDict(frozen=True)

    enqueue: bool
    previous: JobState | None
    job: Job


class JobStore:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    # --- reads
    async def get(self, kind: str, key: str) -> Job | None:
        client = await self._table.client()
        async with storage_errors(f"reading job {kind}/{key}", self._table.where):
            try:
                entity = await client.get_entity(encode_key(kind), encode_key(key))
            except ResourceNotFoundError:
                return None
        return Job.from_entity(entity)

    async def list(self, kind: str | None = None, state: JobState | None = None) -> list[Job]:
        client = await self._table.client()
        clauses, params = [], {}
        if kind is not None:
            clauses.append("PartitionKey eq @kind")
            params["kind"] = encode_key(kind)
        if state is not None:
            clauses.append("State eq @state")
            params["state"] = state
        async with storage_errors("listing jobs", self._table.where):
            if clauses:
                pages = client.query_entities(" and ".join(clauses), parameters=params)
            else:
                pages = client.list_entities()
            return [Job.from_entity(entity) async for entity in pages]

    # --- writes
    async def _insert(self, job: Job) -> Job | None:
        """Insert a new row; None when the key already exists (the 409 that makes claims atomic)."""
        client = await self._table.client()
        stamp = now()
        job = job.model_copy(update={"created": stamp, "updated": stamp})
        async with storage_errors(f"creating job {job.kind}/{job.key}", self._table.where):
            try:
                meta = await client.create_entity(job.to_entity())
            except ResourceExistsError:
                return None
        return job.model_copy(update={"etag": meta["etag"]})

    async def _replace(self, old: Job, **changes: Any) -> Job:
        """ETag-conditional replace of the whole row; LostLeaseError when someone else wrote first."""
        new = old.model_copy(update={**changes, "updated": now()})
        client = await self._table.client()
        async with storage_errors(f"updating job {old.kind}/{old.key}", self._table.where):
            try:
                meta = await client.update_entity(
                    new.to_entity(),
                    mode=UpdateMode.REPLACE,
                    etag=old.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceNotFoundError, HttpResponseError) as exc:
                if isinstance(exc, ResourceNotFoundError) or exc.status_code in (409, 412):
                    raise LostLeaseError(
                        f"job {old.kind}/{old.key} was changed by another worker (it was {old.state})",
                        job=old.ident,
                    ) from None
                raise
        return new.model_copy(update={"etag": meta["etag"]})

    async def guard_enqueue(
        self,
        kind: str,
        key: str,
        *,
        correlation_id: str,
        reason: str,
        reopen_done: bool = False,
        stale_after: float | None = None,
    ) -> EnqueueDecision:
        """Decide whether a message for this job should be sent, recording it as queued when so.

        New -> queued, send. Failed -> queued, send (this is how a replay re-opens a failed job).
        Queued/running/done -> skip, except: `reopen_done` (master pushes: a new change must go out)
        re-opens done jobs, and a queued or expired-running job untouched for `stale_after` seconds is
        sent again, because its message may have been lost; a duplicate message is harmless (claim dedupes).

        The inserted row carries a token of this call: when the SDK retried an insert whose first try had
        landed (its answer lost), the 409 that follows finds our own token and the message is still sent.
        """
        token = uuid.uuid4().hex
        for _ in range(_MAX_RACE_ROUNDS):
            fresh = Job(
                kind=kind, key=key, state="queued", correlation_id=correlation_id, reason=reason, enqueue_token=token
            )
            inserted = await self._insert(fresh)
            if inserted is not None:
                return EnqueueDecision(enqueue=True, previous=None, job=inserted)
            current = await self.get(kind, key)
            if current is None:
                continue  # deleted in between: insert again
            if current.enqueue_token == token and current.state == "queued":
                return EnqueueDecision(enqueue=True, previous=None, job=current)  # our own insert, answer lost
            reopen = reopens(current, reopen_done=reopen_done, stale_after=stale_after)
            if not reopen:
                return EnqueueDecision(enqueue=False, previous=current.state, job=current)
            changes: dict[str, Any] = {"state": "queued", "worker": None, "lease_until": None}
            if current.state in ("failed", "done"):
                changes.update(reopened(current))
            else:
                changes["resends"] = current.resends + 1  # stranded: its message is sent again
            try:
                job = await self._replace(
                    current, correlation_id=correlation_id, reason=reason, enqueue_token=token, **changes
                )
            except LostLeaseError:
                continue
            return EnqueueDecision(enqueue=True, previous=current.state, job=job)
        raise LostLeaseError(f"job {kind}/{key} kept changing while enqueuing; try again", job=(kind, key))

    async def undo_enqueue(self, decision: EnqueueDecision) -> bool:
        """Best effort: put the row back as it was when the message could not be sent; True if undone.

        Without this a failed send would leave a queued row with no message, and every retry of the
        webhook would be skipped until the row goes stale (the reconciler re-queues it then). A row
        someone changed since is left alone.
        """
        if not decision.enqueue:
            return False
        job = decision.job
        client = await self._table.client()
        try:
            if decision.previous is None:
                async with storage_errors(f"undoing job {job.kind}/{job.key}", self._table.where):
                    await client.delete_entity(
                        encode_key(job.kind),
                        encode_key(job.key),
                        etag=job.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            elif decision.previous in ("failed", "done"):
                await self._replace(job, state=decision.previous)
            else:
                return False
        except (LostLeaseError, HttpResponseError, ConnectorError):
            return False
        return True

    async def claim(
        self, kind: str, key: str, *, worker: str, lease_seconds: float, at: datetime | None = None
    ) -> Job | None:
        """Take the job for `worker` until the lease expires; None when it is not ours to run.

        Queued (or missing) -> running. Running with an expired lease -> taken over (counted in
        `takeovers`: the worker before us stopped mid-step). Done, failed or running with a live lease
        -> None (read `get` to see why), and so is a queued job whose back-off is not over at `at` (an early
        duplicate message must not cut the back-off short: the message that is due comes at `retry_at`).
        """
        for _ in range(_MAX_RACE_ROUNDS):
            lease_until = now() + timedelta(seconds=lease_seconds)
            current = await self.get(kind, key)
            if current is None:
                started = Job(kind=kind, key=key, state="running", attempts=1, worker=worker, lease_until=lease_until)
                inserted = await self._insert(started)
                if inserted is not None:
                    return inserted
                continue
            if current.state in ("done", "failed") or current.lease_live() or (at and current.backing_off(at)):
                return None
            takeover = 1 if current.state == "running" else 0
            try:
                return await self._replace(
                    current,
                    state="running",
                    worker=worker,
                    lease_until=lease_until,
                    attempts=current.attempts + 1,
                    takeovers=current.takeovers + takeover,
                    resends=0,  # a message arrived: the next lost one is re-sent after one grace again
                )
            except LostLeaseError:
                continue  # someone else moved it: look again
        return None

    async def save(self, job: Job, **changes: Any) -> Job:
        """Conditional write of some fields of a job we hold (context, intent, lease); LostLeaseError if stale."""
        return await self._replace(job, **changes)

    async def renew(self, job: Job, lease_seconds: float) -> Job:
        """Extend our lease for long work; LostLeaseError if the job was taken over meanwhile."""
        return await self._replace(job, lease_until=now() + timedelta(seconds=lease_seconds))

    async def complete(self, job: Job, result: dict[str, Any]) -> Job:
        return await self._replace(
            job, state="done", result=result, lease_until=None, last_error=None, intent=None, retry_at=None
        )

    async def fail(self, job: Job, reason: str, detail: dict[str, Any] | None = None) -> Job:
        return await self._replace(job, state="failed", last_error=reason, detail=detail, lease_until=None)

    async def release(self, job: Job, error: str, **changes: Any) -> Job:
        """Give a job back after a transient error: queued again, the message's retry will claim it.

        `changes` carries the back-off bookkeeping (`retry_at`, `failures`, `first_failure`) when the flow
        re-queues with a delay.
        """
        return await self._replace(job, state="queued", last_error=error, worker=None, lease_until=None, **changes)

    async def list_open(self, kind: str) -> builtins.list[Job]:
        """Jobs of `kind` that are queued or running: what the reconciler looks through."""
        client = await self._table.client()
        params = {"kind": encode_key(kind), "queued": "queued", "running": "running"}
        query = "PartitionKey eq @kind and ( State eq @queued or State eq @running )"  # SDK splits on spaces
        async with storage_errors("listing open jobs", self._table.where):
            return [Job.from_entity(e) async for e in client.query_entities(query, parameters=params)]
