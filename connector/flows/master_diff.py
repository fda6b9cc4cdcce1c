"""The timer's full master diff: page through ReleasedProductsV2 / CustomersV3 of every configured legal
entity, hash what would be pushed, and queue a master push only where the hash differs from the id map.

With nothing changed this costs the paged D365 reads and one id-map scan per kind: no Pipedrive call
and no push. The push itself re-reads the record, so a message queued here is never stale.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from connector.flows.masters import ORG_MAP, PRODUCT_MAP, company_currency, source_key
from connector.mapping.config import MappingConfig
from connector.mapping.masters import content_hash, organization_from_customer, product_from_released
from connector.queues import MasterReason
from connector.runtime import Runtime

EntityChoice = Literal["products", "customers", "all"]


@dataclass
class DiffResult:
    correlation_id: str
    legal_entities: list[str]
    seen: dict[str, int] = field(default_factory=dict)  # "products" / "customers" -> records read
    changed: dict[str, int] = field(default_factory=dict)  # -> records whose hash differs
    enqueued: int = 0  # messages sent (a push already queued is not sent twice)
    skipped: list[str] = field(default_factory=list)  # why a kind was not diffed


def legal_entities(cfg: MappingConfig) -> list[str]:
    """The default legal entity, then every per-pipeline one, each once, lower-case."""
    ordered = [cfg.legal_entity.default, *cfg.legal_entity.by_pipeline.values()]
    return list(dict.fromkeys(le.lower() for le in ordered))


async def master_diff(
    rt: Runtime,
    entity: EntityChoice = "all",
    *,
    reason: MasterReason = "timer",
    correlation_id: str | None = None,
) -> DiffResult:
    cfg = rt.mapping
    result = DiffResult(correlation_id or f"{reason}-{uuid.uuid4().hex[:12]}", legal_entities(cfg))
    if entity in ("products", "all"):
        await _diff_products(rt, result, reason)
    if entity in ("customers", "all"):
        if cfg.pipedrive_fields.org_customer_account:
            await _diff_customers(rt, result, reason)
        else:
            result.skipped.append("customers: pipedrive_fields.org_customer_account is not set in the mapping")
    await rt.state.audit.append(
        "master-diff",
        "diff.done",
        correlation_id=result.correlation_id,
        detail={"seen": result.seen, "changed": result.changed, "enqueued": result.enqueued, "reason": reason},
    )
    return result


async def _diff_products(rt: Runtime, result: DiffResult, reason: MasterReason) -> None:
    pushed = {e.source_key: e.content_hash for e in await rt.state.idmap.all(PRODUCT_MAP)}
    d365 = await rt.d365()
    for le in result.legal_entities:
        names = await d365.product_names(le)
        currency = company_currency(rt, le)
        async for released in d365.iter_released_products(le):
            result.seen["products"] = result.seen.get("products", 0) + 1
            payload = product_from_released(released, name=names.get(released.item_number), currency=currency)
            if pushed.get(source_key(le, released.item_number)) == content_hash(payload):
                continue
            result.changed["products"] = result.changed.get("products", 0) + 1
            if await rt.queues.enqueue_master(
                "product", released.item_number, le, reason=reason, correlation_id=result.correlation_id
            ):
                result.enqueued += 1


async def _diff_customers(rt: Runtime, result: DiffResult, reason: MasterReason) -> None:
    pushed = {e.source_key: e.content_hash for e in await rt.state.idmap.all(ORG_MAP)}
    d365 = await rt.d365()
    for le in result.legal_entities:
        async for customer in d365.iter_customers(le):
            result.seen["customers"] = result.seen.get("customers", 0) + 1
            payload = organization_from_customer(customer, rt.mapping)
            if pushed.get(source_key(le, customer.customer_account)) == content_hash(payload):
                continue
            result.changed["customers"] = result.changed.get("customers", 0) + 1
            if await rt.queues.enqueue_master(
                "customer", customer.customer_account, le, reason=reason, correlation_id=result.correlation_id
            ):
                result.enqueued += 1
