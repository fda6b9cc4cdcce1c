"""Append-only audit trail: one partition per subject (e.g. `deal-123`), rows in time order.

Row keys are zero-padded nanosecond timestamps, strictly increasing within a process (two writes in the
same clock tick still sort in write order), plus a random suffix so two hosts never collide.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from connector.redact import scrub, scrub_text
from connector.state.tables import LazyTable, decode_key, dumps, encode_key, loads, storage_errors
from connector.validation import problem_lines

Level = Literal["debug", "info", "warning", "error"]


class _Clock:
    """Strictly increasing nanosecond stamps for this process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


_clock = _Clock()
_host = os.urandom(3).hex()
_seq = itertools.count()


def audit_row_key() -> str:
    """Sorts lexicographically in time order: 20-digit ns, then a per-process tag and sequence."""
    return f"{_clock.next():020d}-{_host}{next(_seq) % 0x10000:04x}"


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    event: str
    at: datetime
    correlation_id: str
    level: Level
    detail: dict[str, Any]
    row_key: str

    @classmethod
    def from_entity(cls, entity: Any) -> AuditEntry:
        """Parse a stored row; one edited by hand or written by something else becomes an `audit.malformed`
        entry saying what is wrong, so the rest of the trail (admin page, `audit`) is still shown."""
        try:
            return cls._parse(entity)
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            problem = "; ".join(problem_lines(exc, root="row")) if isinstance(exc, ValidationError) else repr(exc)
            stamp = getattr(entity, "metadata", {}).get("timestamp")
            row_key = str(entity.get("RowKey", ""))
            return cls(
                subject=str(entity.get("PartitionKey", "")),
                event="audit.malformed",
                at=stamp if isinstance(stamp, datetime) else datetime.fromtimestamp(0, UTC),
                correlation_id="",
                level="error",
                detail={"row_key": row_key[:80], "problem": problem[:300]},
                row_key=row_key,
            )

    @classmethod
    def _parse(cls, entity: Any) -> AuditEntry:
        detail = loads(entity.get("Detail"))
        return cls(
            subject=decode_key(entity["PartitionKey"]),
            event=entity["Event"],
            at=datetime.fromtimestamp(int(entity["RowKey"][:20]) / 1e9, UTC),
            correlation_id=entity.get("CorrelationId", ""),
            level=entity.get("Level", "info"),
            detail=detail if isinstance(detail, dict) else {},
            row_key=entity["RowKey"],
        )


class AuditLog:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    async def append(
        self,
        subject: str,
        event: str,
        *,
        correlation_id: str,
        level: Level = "info",
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Write one row; `detail` is scrubbed of secret-looking keys and text before it is stored."""
        row_key = audit_row_key()
        entity = {
            "PartitionKey": encode_key(subject),
            "RowKey": row_key,
            "Event": scrub_text(event),
            "CorrelationId": correlation_id,
            "Level": level,
            "Detail": dumps(scrub(detail or {})),
        }
        client = await self._table.client()
        async with storage_errors(f"writing audit for {subject}", self._table.where):
            await client.create_entity(entity)
        return AuditEntry.from_entity(entity)

    async def trail(self, subject: str) -> list[AuditEntry]:
        """The subject's whole trail, oldest first (Table Storage returns a partition in RowKey order)."""
        client = await self._table.client()
        async with storage_errors(f"reading audit for {subject}", self._table.where):
            pages = client.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(subject)})
            return [AuditEntry.from_entity(entity) async for entity in pages]
