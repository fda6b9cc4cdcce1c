"""POST /api/admin/replay (function-key auth): re-queue deals, all failed jobs, or the poison queue.

Body: {"deal_ids": [123, 456]} | {"failed": true} | {"poison": true}. Replays pass the same job guard
and claim as everything else, so they cannot make a second order.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from connector.flows.replay import ReplayResult, replay_deals, replay_failed, replay_poison
from connector.functions.http import HttpIn, HttpOut, json_error, json_response
from connector.runtime import get_runtime


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deal_ids: list[int] = Field(default_factory=list, max_length=1000)
    failed: bool = False
    poison: bool = False

    @model_validator(mode="after")
    def _something(self) -> ReplayRequest:
        if not (self.deal_ids or self.failed or self.poison):
            raise ValueError("give deal_ids, failed: true or poison: true")
        return self


async def handle_replay(req: HttpIn) -> HttpOut:
    try:
        body: Any = json.loads(req.body or b"{}")
        request = ReplayRequest.model_validate(body)
    except ValueError as exc:
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, PydanticValidationError)
            else f"body is not JSON ({exc})"
        )
        return json_error(400, f"bad replay request: {detail}")
    rt = await get_runtime()
    correlation_id = f"replay-{uuid.uuid4().hex[:12]}"
    total = ReplayResult()
    if request.deal_ids:
        _merge(total, await replay_deals(rt, request.deal_ids, correlation_id=correlation_id))
    if request.failed:
        _merge(total, await replay_failed(rt, correlation_id=correlation_id))
    if request.poison:
        _merge(total, await replay_poison(rt))
    return json_response(
        202,
        {
            "correlation_id": correlation_id,
            "requeued": total.requeued,
            "skipped": {str(k): v for k, v in total.skipped.items()},
            "poison_requeued": total.poison_requeued,
        },
    )


def _merge(into: ReplayResult, part: ReplayResult) -> None:
    into.requeued.extend(part.requeued)
    into.skipped.update(part.skipped)
    into.poison_requeued += part.poison_requeued
