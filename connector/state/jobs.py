"""Job rows: the dedupe guard and the claim/lease protocol that makes "one deal, one order" hold.

Row = (PartitionKey kind, RowKey key). States: queued -> running -> done | failed; running -> queued on a
transient release (with a `retry_at` when the flow backs off). Creating a row is an insert that fails
with 409 on an existing key; every later transition is ETag-conditional, so two workers can never both
believe they own a job.

Besides the state, a row carries what a flow must remember across attempts (docs/architecture.md, "Job
lifecycle"): `context` (facts frozen at the first attempt and confirmed progress), `intent` (the create
that was about to be sent: a later attempt looks before it creates again), the transient-failure count and
the time of the first one (the outage horizon), and `takeovers` (leases that ran out under a worker).
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, ConfigDict, Field

from connector.errors import ConnectorError, ProtocolError
from connector.redact import scrub, scrub_text
from connector.state.tables import LazyTable, decode_key, dumps, encode_key, loads, now, storage_errors

JobState = Literal["queued", "running", "done", "failed"]

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


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    key: str
    state: JobState
    attempts: int = 0
    worker: str | None = None
    lease_until: datetime | None = None
    correlation_id: str = ""
    reason: str = ""
    result: dict[str, Any] | None = None
    last_error: str | None = None
    detail: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    intent: dict[str, Any] | None = None
    retry_at: datetime | None = None
    failures: int = 0
    first_failure: datetime | None = None
    takeovers: int = 0
    token: str = ""
    created: datetime | None = None
    updated: datetime | None = None
    etag: str = Field("", repr=False)

    @property
    def ident(self) -> tuple[str, str]:
        return (self.kind, self.key)

    def lease_live(self, at: datetime | None = None) -> bool:
        return self.state == "running" and self.lease_until is not None and self.lease_until > (at or now())

    def stranded(self, grace: float, at: datetime | None = None) -> bool:
        """Queued or running, nobody holding it, and nothing due to run it (no back-off, no lease pending)
        for `grace` seconds: its message may have been lost (the reconciler's and the enqueue guard's test)."""
        at = at or now()
        if self.state not in ("queued", "running") or self.lease_live(at):
            return False
        due = max(d for d in (self.retry_at, self.updated, self.lease_until, self.created, at - timedelta(days=3650))
                  if d is not None)  # fmt: skip
        return due + timedelta(seconds=grace) <= at

    def early(self, at: datetime) -> bool:
        """A queued job whose back-off (or settle wait) is not over: a message for it now came early."""
        return self.state == "queued" and self.retry_at is not None and self.retry_at > at + timedelta(seconds=1)

    @classmethod
    def from_entity(cls, entity: Any) -> Job:
        """Parse a stored row; a hand-edited or foreign row is a ProtocolError naming the row, not a crash."""
        try:
            return cls._from_entity(entity)
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            where = f"{entity.get('PartitionKey')}/{entity.get('RowKey')}"
            raise ProtocolError(f"job row {where} is malformed: {str(exc).splitlines()[0][:200]}") from None

    @classmethod
    def _from_entity(cls, entity: Any) -> Job:
        return cls(
            kind=decode_key(entity["PartitionKey"]),
            key=decode_key(entity["RowKey"]),
            state=entity["State"],
            attempts=int(entity.get("Attempts", 0)),
            worker=entity.get("Worker") or None,
            lease_until=entity.get("LeaseUntil"),
            correlation_id=entity.get("CorrelationId", ""),
            reason=entity.get("Reason", ""),
            result=loads(entity.get("Result")),
            last_error=entity.get("LastError") or None,
            detail=loads(entity.get("Detail")),
            context=loads(entity.get("Context")),
            intent=loads(entity.get("Intent")),
            retry_at=entity.get("RetryAt"),
            failures=int(entity.get("Failures", 0)),
            first_failure=entity.get("FirstFailure"),
            takeovers=int(entity.get("Takeovers", 0)),
            token=entity.get("EnqueueToken", ""),
            created=entity.get("Created"),
            updated=entity.get("Updated"),
            etag=entity.metadata["etag"],
        )

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": encode_key(self.kind),
            "RowKey": encode_key(self.key),
            "State": self.state,
            "Attempts": self.attempts,
            "Worker": self.worker or "",
            "CorrelationId": self.correlation_id,
            "Reason": self.reason,
            "Result": dumps(self.result) if self.result is not None else "",
            "LastError": scrub_text(self.last_error or ""),
            "Detail": dumps(scrub(self.detail)) if self.detail is not None else "",
            "Context": dumps(self.context) if self.context is not None else "",
            "Intent": dumps(self.intent) if self.intent is not None else "",
            "Failures": self.failures,
            "Takeovers": self.takeovers,
            "EnqueueToken": self.token,
            "Created": self.created or now(),
            "Updated": self.updated or now(),
        }
        for column, value in (
            ("LeaseUntil", self.lease_until),
            ("RetryAt", self.retry_at),
            ("FirstFailure", self.first_failure),
        ):
            if value is not None:
                entity[column] = value
        return entity


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
            fresh = Job(kind=kind, key=key, state="queued", correlation_id=correlation_id, reason=reason, token=token)
            inserted = await self._insert(fresh)
            if inserted is not None:
                return EnqueueDecision(enqueue=True, previous=None, job=inserted)
            current = await self.get(kind, key)
            if current is None:
                continue  # deleted in between: insert again
            if current.token == token and current.state == "queued":
                return EnqueueDecision(enqueue=True, previous=None, job=current)  # our own insert, answer lost
            reopen = reopens(current, reopen_done=reopen_done, stale_after=stale_after)
            if not reopen:
                return EnqueueDecision(enqueue=False, previous=current.state, job=current)
            changes: dict[str, Any] = {"state": "queued", "worker": None, "lease_until": None}
            if current.state in ("failed", "done"):
                changes.update(reopened(current))
            try:
                job = await self._replace(current, correlation_id=correlation_id, reason=reason, token=token, **changes)
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
            if current.state in ("done", "failed") or current.lease_live() or (at and current.early(at)):
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


def reopens(current: Job, *, reopen_done: bool, stale_after: float | None) -> bool:
    """Whether a message should be sent for an existing job row: failed (a replay), done with `reopen_done`
    (master pushes), or queued/expired-running and untouched for `stale_after` seconds (message lost?)."""
    if current.state == "failed" or (reopen_done and current.state == "done"):
        return True
    # A job waiting out a back-off is not stale: its message is in the queue, due at `retry_at`.
    return stale_after is not None and current.stranded(stale_after)


def reopened(job: Job) -> dict[str, Any]:
    """What a replay resets on a failed (or done) job: attempts bookkeeping, and the context unless it
    must be kept (a flow marks it `keep` once anything may have been written under it)."""
    context = job.context if (job.context or {}).get("keep") else None
    return {"failures": 0, "first_failure": None, "retry_at": None, "takeovers": 0, "context": context}
