"""Master push for ONE D365 record (DESIGN.md flow 3): a released product -> a Pipedrive product, or a
customer -> a Pipedrive organization, written only when what we would push changed.

The id map (kind `pd-product` / `pd-org`, source key `<le>:<key>`, target = Pipedrive id) keeps the
content hash of the last push, so an unchanged record costs one D365 read and no Pipedrive call. An
unmapped record is looked up in Pipedrive before anything is created (product by code, organization by
the D365-account custom field), so a crash between the create and the id-map write adopts the record
on the retry instead of duplicating it. Nothing is ever deleted in Pipedrive, and nothing financial is
sent: products carry name, code, unit and a list price; organizations name, address and the account.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from connector.errors import NotFoundError, PermanentError, RetryLaterError
from connector.flows.claims import lease_left, release
from connector.flows.context import Checkpoint, FlowContext
from connector.mapping.masters import content_hash, organization_from_customer, product_from_released
from connector.pipedrive.models import ProductInput, ProductPrice, ProductPriceInput
from connector.queues import MasterPush
from connector.runtime import Runtime
from connector.state.jobs import LostLeaseError

PRODUCT_MAP = "pd-product"
ORG_MAP = "pd-org"
LOCK_KIND = "pd-create"  # job rows used as cross-instance locks around find-or-create
LOCK_LEASE_SECONDS = 60
LOCK_WAIT_SECONDS = 10.0
Outcome = Literal["created", "updated", "adopted", "unchanged", "not_found", "duplicate", "failed", "superseded"]


@dataclass
class PushResult:
    entity: str
    key: str
    legal_entity: str
    outcome: Outcome
    target_id: int | None = None
    reason: str | None = None


def source_key(legal_entity: str, key: str) -> str:
    """The id-map row key of a D365 record: `<le>:<key>` (the MasterPush job key too)."""
    return f"{legal_entity.lower()}:{key}"


def company_currency(rt: Runtime, legal_entity: str) -> str:
    """The currency a product's list price is pushed in: the legal entity's customer default currency."""
    return rt.mapping.customer.defaults_for(legal_entity).currency


async def push_master(rt: Runtime, message: MasterPush, *, checkpoint: Checkpoint | None = None) -> PushResult:
    """Push one record. Transient errors propagate (the queue retries) after the job is released."""
    ctx = FlowContext(message.subject, message.correlation_id, rt.state.audit)
    if checkpoint is not None:
        ctx.checkpoint = checkpoint
    jobs = rt.state.jobs
    job = await jobs.claim(
        message.job_kind, message.job_key, worker=rt.worker, lease_seconds=rt.settings.job_lease_seconds
    )
    if job is None:
        return await _not_claimed(rt, ctx, message)
    await ctx.audit("push.started", reason=message.reason, attempt=job.attempts)
    try:
        result = await _push(rt, ctx, message)
    except LostLeaseError as exc:
        await ctx.audit("push.superseded", level="warning", error=str(exc))
        return _result(message, "superseded", reason=str(exc))
    except PermanentError as exc:
        await jobs.fail(job, str(exc), {"error": type(exc).__name__})
        await ctx.audit("push.failed", level="error", reason=str(exc), error=type(exc).__name__)
        return _result(message, "failed", reason=str(exc))
    except BaseException as exc:  # transient, or unknown (a bug, a crash hook): the message's retry runs it
        await release(rt.state.jobs, ctx, job, exc, "push.retry")
        raise
    try:
        await jobs.complete(job, {"outcome": result.outcome, "target_id": result.target_id})
    except LostLeaseError as exc:
        await ctx.audit("push.superseded", level="warning", error=str(exc), target_id=result.target_id)
        return _result(message, "superseded", result.target_id, reason=str(exc))
    await ctx.audit("push.done", outcome=result.outcome, target_id=result.target_id)
    await ctx.step("recorded")
    return result


async def _not_claimed(rt: Runtime, ctx: FlowContext, message: MasterPush) -> PushResult:
    current = await rt.state.jobs.get(message.job_kind, message.job_key)
    if current is not None and current.state == "done":
        await ctx.audit("push.duplicate", reason=message.reason)
        return _result(message, "duplicate", (current.result or {}).get("target_id"))
    if current is not None and current.lease_live():
        delay = lease_left(current)
        raise RetryLaterError(f"{message.subject} is being pushed by another worker", delay=delay)
    state = current.state if current else "missing"
    await ctx.audit("push.skipped", level="warning", job_state=state, reason=message.reason)
    return _result(message, "failed", reason=f"job is {state}; push the record again to retry it")


def _result(
    message: MasterPush, outcome: Outcome, target_id: int | None = None, *, reason: str | None = None
) -> PushResult:
    return PushResult(message.entity, message.key, message.legal_entity.lower(), outcome, target_id, reason)


async def _push(rt: Runtime, ctx: FlowContext, message: MasterPush) -> PushResult:
    if message.entity == "product":
        target = await _product_target(rt, message)
    else:
        target = await _org_target(rt, message)
    if target is None:
        # Deleted or never there in D365: nothing is deleted in Pipedrive (sellers may still quote it).
        await ctx.audit("master.not_found", level="warning", entity=message.entity, key=message.key)
        return _result(message, "not_found")
    return await _apply(rt, ctx, message, target)


@dataclass
class _Target:
    """How to write one mapped record; the flow decides WHEN (hash, id map, find-before-create)."""

    kind: str
    lock_key: str  # the Pipedrive identity: product code or organization account, case-folded
    payload_hash: str
    find: Callable[[], Awaitable[int | None]]  # existing Pipedrive record for an unmapped source
    update: Callable[[int], Awaitable[bool]]  # False when the mapped record is gone in Pipedrive
    create: Callable[[], Awaitable[int]]


async def _apply(rt: Runtime, ctx: FlowContext, message: MasterPush, target: _Target) -> PushResult:
    key = source_key(message.legal_entity, message.key)
    entry = await rt.state.idmap.get(target.kind, key)
    if entry is not None and entry.content_hash == target.payload_hash:
        await ctx.audit("master.unchanged", target_id=entry.target_key)
        return _result(message, "unchanged", int(entry.target_key))
    # One writer per Pipedrive record at a time: a product serves every company's item of that code, so
    # two companies' pushes would both miss in the search and both create, or both read-merge-write prices.
    async with _exclusive(rt, target.lock_key):
        outcome: Outcome = "updated"
        target_id = int(entry.target_key) if entry is not None and entry.target_key.isdigit() else None
        if target_id is not None and not await target.update(target_id):
            await ctx.audit("master.target_gone", level="warning", target_id=target_id)
            target_id = None
        if target_id is None:
            # Unmapped (or its record vanished): find before create, so a lost id-map write never duplicates.
            target_id = await target.find()
            if target_id is not None:
                await target.update(target_id)
                outcome = "adopted"
            else:
                await ctx.step("before_create")
                target_id = await target.create()
                outcome = "created"
                await ctx.step("after_create")
        await rt.state.idmap.put(target.kind, key, str(target_id), target.payload_hash)
    await ctx.audit(f"master.{outcome}", target_id=target_id, kind=target.kind)
    return _result(message, outcome, target_id)


@contextlib.asynccontextmanager
async def _exclusive(rt: Runtime, lock_key: str) -> AsyncIterator[None]:
    """Hold a lease on `lock_key` (a job row, so it spans instances) while writing one Pipedrive record.

    The holder needs a few calls, so wait a little for it; past that, re-queue with a delay.
    """
    jobs = rt.state.jobs
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT_SECONDS
    while (job := await jobs.claim(LOCK_KIND, lock_key, worker=rt.worker, lease_seconds=LOCK_LEASE_SECONDS)) is None:
        if loop.time() >= deadline:
            raise RetryLaterError(f"{lock_key} is being pushed by another worker", delay=LOCK_WAIT_SECONDS)
        await asyncio.sleep(0.1)  # a lease held elsewhere: poll the row, bounded by the deadline
    try:
        yield
    finally:
        with contextlib.suppress(LostLeaseError):
            await jobs.release(job, "")


# --- products -----------------------------------------------------------------------------------


async def _product_target(rt: Runtime, message: MasterPush) -> _Target | None:
    d365 = await rt.d365()
    released = await d365.find_item(message.key, message.legal_entity)
    if released is None:
        return None
    name = await d365.product_name(message.key, message.legal_entity)
    payload = product_from_released(released, name=name, currency=company_currency(rt, message.legal_entity))
    pipedrive = await rt.pipedrive()

    async def find() -> int | None:
        found = await pipedrive.search_product_by_code(payload.code or message.key)
        return found.id if found is not None and not found.is_deleted else None

    async def update(product_id: int) -> bool:
        try:
            current = await pipedrive.get_product(product_id)
        except NotFoundError:
            return False
        if current.is_deleted:
            return False
        await pipedrive.update_product(product_id, _merge_prices(payload, current.prices))
        return True

    async def create() -> int:
        return (await pipedrive.create_product(payload)).id

    lock_key = f"product:{(payload.code or message.key).strip().casefold()}"
    return _Target(PRODUCT_MAP, lock_key, content_hash(payload), find, update, create)


def _merge_prices(payload: ProductInput, current: list[ProductPrice]) -> ProductInput:
    """PATCH `prices` replaces the whole array (v2 rule): keep every other currency's price (another
    company's push, or a seller's) and any cost already there. We never send a cost of our own."""
    if payload.prices is None:
        return payload
    existing = {p.currency.upper(): p for p in current if len(p.currency) == 3}

    def price(value: float, currency: str, was: ProductPrice | None) -> ProductPriceInput:
        kept = {"cost": was.cost, "direct_cost": was.direct_cost} if was is not None else {}
        return ProductPriceInput(price=value, currency=currency, **{k: v for k, v in kept.items() if v is not None})

    ours = [price(p.price, p.currency, existing.get(p.currency)) for p in payload.prices]
    others = [price(p.price, code, p) for code, p in existing.items() if code not in {o.currency for o in ours}]
    return payload.model_copy(update={"prices": ours + others})


# --- organizations ------------------------------------------------------------------------------


async def _org_target(rt: Runtime, message: MasterPush) -> _Target | None:
    cfg = rt.mapping
    field_name = cfg.pipedrive_fields.org_customer_account
    if not field_name:
        # Without the account on the organization there is no exact match: a retry could duplicate.
        raise PermanentError(
            "customers cannot be pushed: set pipedrive_fields.org_customer_account (the organization field "
            "that holds the D365 customer account) in the mapping, then push again"
        )
    d365 = await rt.d365()
    customer = await d365.find_customer(message.key, message.legal_entity)
    if customer is None:
        return None
    payload = organization_from_customer(customer, cfg)
    pipedrive = await rt.pipedrive()
    fields = await rt.custom_fields("organization")
    field_code = await fields.code_for(field_name)
    body = payload.model_copy(update={"custom_fields": await fields.to_hashes(payload.custom_fields or {})})

    async def find() -> int | None:
        found = await pipedrive.find_organizations_by_field(field_code, customer.customer_account)
        return min(org.id for org in found) if found else None

    async def update(org_id: int) -> bool:
        try:
            await pipedrive.update_organization(org_id, body)
        except NotFoundError:
            return False
        return True

    async def create() -> int:
        return (await pipedrive.create_organization(body)).id

    lock_key = f"org:{customer.customer_account.strip().casefold()}"
    return _Target(ORG_MAP, lock_key, content_hash(payload), find, update, create)
