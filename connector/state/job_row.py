"""The job row: its fields, how it is stored in the jobs table, and the pure tests on it.

Row = (PartitionKey kind, RowKey key). States: queued -> running -> done | failed; running -> queued on a
transient release (with a `retry_at` when the flow backs off). Besides the state, a row carries what a flow
must remember across attempts (docs/architecture.md, "Job lifecycle"): `context` (facts frozen at the first
attempt and confirmed progress), `intent` (the create that was about to be sent: a later attempt looks
before it creates again), the transient-failure count and the time of the first one (the outage horizon),
`takeovers` (leases that ran out under a worker) and `resends` (messages sent again for it since it was last
claimed: each one doubles the wait before the next). `connector.state.jobs` reads and writes rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.errors import ProtocolError
from connector.redact import scrub, scrub_text
from connector.state.tables import decode_key, dumps, encode_key, loads, now

JobState = Literal["queued", "running", "done", "failed"]
MAX_RESEND_DOUBLINGS = 3  # the wait before another re-send doubles with each one, up to 8 x the grace


class Job(BaseModel):
    """One row of the jobs table, as read (with its ETag, for the conditional write that follows)."""

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
    resends: int = 0
    enqueue_token: str = ""  # the guard_enqueue call that last queued it (not a credential)
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
        for `grace` seconds: its message may have been lost (the reconciler's and the enqueue guard's test).

        After a re-send the wait doubles (up to MAX_RESEND_DOUBLINGS): a message behind a long backlog is
        late, not lost, and re-sending it every grace period only lengthens the queue it waits in."""
        at = at or now()
        if self.state not in ("queued", "running") or self.lease_live(at):
            return False
        due = max(d for d in (self.retry_at, self.updated, self.lease_until, self.created, at - timedelta(days=3650))
                  if d is not None)  # fmt: skip
        wait = grace * 2 ** min(self.resends, MAX_RESEND_DOUBLINGS)
        return due + timedelta(seconds=wait) <= at

    def backing_off(self, at: datetime) -> bool:
        """Queued, and its back-off (or settle wait) is not over at `at`: a message for it now came early."""
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
            resends=int(entity.get("Resends", 0)),
            enqueue_token=entity.get("EnqueueToken", ""),
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
            "Resends": self.resends,
            "EnqueueToken": self.enqueue_token,
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
    return {"failures": 0, "first_failure": None, "retry_at": None, "takeovers": 0, "resends": 0, "context": context}
