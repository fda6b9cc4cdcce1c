"""The full master diff (timer, CLI): page through ReleasedProductsV2 / CustomersV3 of every configured legal
entity, hash what would be pushed, and push only where the hash differs from the id map.

With nothing changed this costs the paged D365 reads and one id-map scan per kind: no Pipedrive call
and no write. A changed record is pushed from the row the diff has just read (never read again), a
few at a time (`MASTER_PUSH_CONCURRENCY`), finding existing Pipedrive records in one listing
(`PipedriveDirectory`, listed once the changes are more than a handful). What the diff cannot push in
its time (`MASTER_INLINE_SECONDS`), or what failed, goes to the master queue, whose push reads the
record again and retries, backs off or fails it visibly like any event's push. Id-map rows are written
in batch transactions; each pushed record keeps one audit row.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from connector.d365.models import Customer, ReleasedProduct
from connector.flows.context import FlowContext
from connector.flows.deps import DiffDeps, MasterDeps
from connector.flows.masters import (
    ORG_MAP,
    PRODUCT_MAP,
    Target,
    apply,
    company_currency,
    org_directory,
    org_target,
    product_target,
    source_key,
)
from connector.flows.pd_directory import PipedriveDirectory
from connector.mapping.config import MappingConfig
from connector.mapping.masters import content_hash, organization_from_customer, product_from_released
from connector.queues import MasterReason
from connector.state.idmap import IdMapEntry

log = logging.getLogger(__name__)
EntityChoice = Literal["products", "customers", "all"]
Entity = Literal["product", "customer"]
LIST_AFTER = 10  # changed records of a kind before Pipedrive is listed once instead of asked per record
IDMAP_BATCH = 100


@dataclass
class DiffResult:
    correlation_id: str
    legal_entities: list[str]
    seen: dict[str, int] = field(default_factory=dict)  # "products" / "customers" -> records read
    changed: dict[str, int] = field(default_factory=dict)  # -> records whose hash differs
    pushed: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> outcome -> records the diff pushed
    enqueued: int = 0  # messages sent to the master queue (past the time budget, or after a failed push)
    skipped: list[str] = field(default_factory=list)  # why a kind was not diffed


def legal_entities(cfg: MappingConfig) -> list[str]:
    """The default legal entity, then every per-pipeline one, each once, lower-case."""
    ordered = [cfg.legal_entity.default, *cfg.legal_entity.by_pipeline.values()]
    return list(dict.fromkeys(le.lower() for le in ordered))


async def master_diff(
    deps: DiffDeps,
    entity: EntityChoice = "all",
    *,
    reason: MasterReason = "timer",
    correlation_id: str | None = None,
    inline_seconds: float | None = None,
) -> DiffResult:
    """Diff and push; `inline_seconds` (default MASTER_INLINE_SECONDS; 0: queue every change, inf: no limit)."""
    cfg = deps.masters.cfg
    result = DiffResult(correlation_id or f"{reason}-{uuid.uuid4().hex[:12]}", legal_entities(cfg))
    budget = deps.inline_seconds if inline_seconds is None else inline_seconds
    pusher = _Pusher(deps, result, reason, budget)
    try:
        if entity in ("products", "all"):
            await _diff_products(deps.masters, result, pusher)
        if entity in ("customers", "all"):
            if cfg.pipedrive_fields.org_customer_account:
                await _diff_customers(deps.masters, result, pusher)
            else:
                result.skipped.append("customers: pipedrive_fields.org_customer_account is not set in the mapping")
    finally:
        await pusher.close()
    await deps.masters.state.audit.append(
        "master-diff",
        "diff.done",
        correlation_id=result.correlation_id,
        detail={
            "seen": result.seen,
            "changed": result.changed,
            "pushed": {kind: dict(outcomes) for kind, outcomes in result.pushed.items()},
            "enqueued": result.enqueued,
            "reason": reason,
        },
    )
    return result


async def _diff_products(deps: MasterDeps, result: DiffResult, pusher: _Pusher) -> None:
    pushed = {e.source_key: e for e in await deps.state.idmap.all(PRODUCT_MAP)}
    mapped = bool(pushed)  # nothing pushed yet (a first sync): list Pipedrive from the first change on
    d365 = deps.d365
    directory: PipedriveDirectory | None = None
    for le in result.legal_entities:
        names = await d365.product_names(le)
        currency = await company_currency(deps, le)
        async for released in d365.iter_released_products(le):
            result.seen["products"] = result.seen.get("products", 0) + 1
            name = names.get(released.item_number)
            payload = product_from_released(released, name=name, currency=currency)
            entry = pushed.pop(source_key(le, released.item_number), None)
            if entry is not None and entry.content_hash == content_hash(payload):
                continue
            result.changed["products"] = result.changed.get("products", 0) + 1
            if directory is None:
                directory = PipedriveDirectory(deps.pipedrive, search_lag=deps.search_lag)
            directory.listed = directory.listed or not mapped or result.changed["products"] > LIST_AFTER

            def target(
                le: str = le, released: ReleasedProduct = released, name: str | None = name,
                directory: PipedriveDirectory = directory,
            ) -> Awaitable[Target]:  # fmt: skip
                return product_target(deps, le, released, name, directory)

            await pusher.submit("product", released.item_number, le, target, entry)


async def _diff_customers(deps: MasterDeps, result: DiffResult, pusher: _Pusher) -> None:
    pushed = {e.source_key: e for e in await deps.state.idmap.all(ORG_MAP)}
    mapped = bool(pushed)
    d365 = deps.d365
    directory: PipedriveDirectory | None = None
    for le in result.legal_entities:
        async for customer in d365.iter_customers(le):
            result.seen["customers"] = result.seen.get("customers", 0) + 1
            payload = organization_from_customer(customer, deps.cfg)
            entry = pushed.pop(source_key(le, customer.customer_account), None)
            if entry is not None and entry.content_hash == content_hash(payload):
                continue
            result.changed["customers"] = result.changed.get("customers", 0) + 1
            directory = directory or await org_directory(deps)
            directory.listed = directory.listed or not mapped or result.changed["customers"] > LIST_AFTER

            def target(customer: Customer = customer, directory: PipedriveDirectory = directory) -> Awaitable[Target]:
                return org_target(deps, customer, directory)

            await pusher.submit("customer", customer.customer_account, le, target, entry)


class _Pusher:
    """Pushes changed records a few at a time until the time budget is spent, then queues the rest."""

    def __init__(self, deps: DiffDeps, result: DiffResult, reason: MasterReason, budget: float) -> None:
        self._deps = deps
        self._result = result
        self._reason = reason
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + budget if math.isfinite(budget) else math.inf
        self._gate = asyncio.Semaphore(deps.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._to_queue: list[tuple[Entity, str, str]] = []
        self._idmap: dict[str, list[tuple[str, str, str]]] = {}

    async def submit(
        self, entity: Entity, key: str, le: str, target: Callable[[], Awaitable[Target]], entry: IdMapEntry | None
    ) -> None:
        if asyncio.get_running_loop().time() >= self._deadline:
            self._to_queue.append((entity, key, le))
            return
        await self._gate.acquire()  # bounds the records in flight: the diff's read waits for a free slot
        task = asyncio.ensure_future(self._push(entity, key, le, target, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(
        self, entity: Entity, key: str, le: str, target: Callable[[], Awaitable[Target]], entry: IdMapEntry | None
    ) -> None:
        masters = self._deps.masters
        ctx = FlowContext(f"{entity}-{le}-{key}", self._result.correlation_id, masters.state.audit)
        try:
            built = await target()
            outcome, target_id = await apply(masters.runner, ctx, built, entry)
            self._result.pushed.setdefault(f"{entity}s", Counter())[outcome] += 1
            if outcome != "unchanged":
                rows = self._idmap.setdefault(built.kind, [])
                rows.append((built.source_key, str(target_id), built.payload_hash))
                if len(rows) >= IDMAP_BATCH:
                    await self._flush(built.kind)
        except Exception as exc:  # the queue's push takes over: it reads again, retries, or fails visibly
            log.warning("master diff: %s %s:%s not pushed (%s); queued", entity, le, key, type(exc).__name__)
            self._to_queue.append((entity, key, le))
        finally:
            self._gate.release()

    async def _flush(self, kind: str) -> None:
        rows, self._idmap[kind] = self._idmap.get(kind, []), []
        if rows:
            await self._deps.masters.state.idmap.put_many(kind, rows)

    async def close(self) -> None:
        """Wait for the pushes in flight, write the id-map rows left, queue what was not pushed."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for kind in list(self._idmap):
            await self._flush(kind)
        if self._to_queue:
            self._result.enqueued += await self._deps.queues.enqueue_masters(
                self._to_queue, reason=self._reason, correlation_id=self._result.correlation_id
            )
            self._to_queue = []
