"""POST /api/admin/replay (function-key auth): re-queue deals, all failed jobs, or the poison queue.

Body: {"deal_ids": [123, 456]} | {"failed": true} | {"poison": true} (combinable). The whole request is
validated before anything is queued: one bad id is a 400 naming it, and nothing is queued. Replays pass
the same job rules and claim as everything else, so they cannot make a second order.
"""

from __future__ import annotations

import uuid
from typing import Any

from connector.flows.replay import ReplayResult, parse_deal_ids, replay_deals, replay_failed, replay_poison
from connector.functions.http import HttpIn, HttpOut, guarded, json_response
from connector.inputs import BadInput, parse_json, printable
from connector.runtime import get_runtime

MAX_BODY_BYTES = 64 * 1024
_FIELDS = ("deal_ids", "failed", "poison")


def parse_replay_request(body: bytes) -> tuple[list[int], bool, bool]:
    """(deal ids, failed, poison) from the body, or BadInput naming every problem."""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"replay body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}", status=413)
    data: Any = parse_json(body or b"{}", what="replay body")
    if not isinstance(data, dict):
        raise BadInput("bad replay request: the body must be a JSON object")
    unknown = [printable(k) for k in data if k not in _FIELDS]
    if unknown:
        raise BadInput(f"bad replay request: unknown field(s) {', '.join(unknown)} (expected {', '.join(_FIELDS)})")
    flags = []
    for name in ("failed", "poison"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise BadInput(f"bad replay request: {name} must be true or false, got {printable(value)}")
        flags.append(value)
    deal_ids = parse_deal_ids(data["deal_ids"]) if "deal_ids" in data else []
    if not (deal_ids or any(flags)):
        raise BadInput("bad replay request: give deal_ids, failed: true or poison: true")
    return deal_ids, flags[0], flags[1]


@guarded
async def handle_replay(req: HttpIn) -> HttpOut:
    deal_ids, failed, poison = parse_replay_request(req.body)
    deps = await (await get_runtime()).requeue_deps()
    correlation_id = f"replay-{uuid.uuid4().hex[:12]}"
    total = ReplayResult()
    if deal_ids:
        _merge(total, await replay_deals(deps, deal_ids, correlation_id=correlation_id))
    if failed:
        _merge(total, await replay_failed(deps, correlation_id=correlation_id))
    if poison:
        _merge(total, await replay_poison(deps))
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
