"""Table Storage state: jobs (dedupe + leases), audit trail, id maps, checkpoints."""

from connector.state.audit import AuditEntry, AuditLog
from connector.state.idmap import Checkpoints, IdMap, IdMapEntry
from connector.state.job_row import Job, JobState
from connector.state.jobs import EnqueueDecision, JobStore, LostLeaseError
from connector.state.store import StateStore
from connector.state.tables import decode_key, encode_key

__all__ = [
    "AuditEntry",
    "AuditLog",
    "Checkpoints",
    "EnqueueDecision",
    "IdMap",
    "IdMapEntry",
    "Job",
    "JobState",
    "JobStore",
    "LostLeaseError",
    "StateStore",
    "decode_key",
    "encode_key",
]
