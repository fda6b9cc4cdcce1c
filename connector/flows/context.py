"""What every flow step shares: the subject's audit trail, correlation id and crash-test checkpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from connector.state.audit import AuditLog, Level

# Called with a step name between steps ("before_create", "after_create", ...). Production passes
# nothing; tests pass a hook that raises to prove a crash between any two steps loses nothing.
Checkpoint = Callable[[str], Awaitable[None]]
# The subject (e.g. `deal-123`) whose step a checkpoint hook is called for: lets one hook crash one deal.
step_subject: ContextVar[str] = ContextVar("step_subject", default="")


async def _no_checkpoint(step: str) -> None:
    return None


@dataclass
class FlowContext:
    subject: str
    correlation_id: str
    audit_log: AuditLog
    checkpoint: Checkpoint = field(default=_no_checkpoint)

    async def audit(self, event: str, level: Level = "info", **detail: Any) -> None:
        await self.audit_log.append(
            self.subject, event, correlation_id=self.correlation_id, level=level, detail=detail or None
        )

    async def step(self, name: str) -> None:
        token = step_subject.set(self.subject)
        try:
            await self.checkpoint(name)
        finally:
            step_subject.reset(token)
