"""Master push for ONE D365 record (docs/architecture.md, flow 3): a released product -> a Pipedrive product, or a
customer -> a Pipedrive organization, written only when what we would push changed.

The id map (kind `pd-product` / `pd-org`, source key `<le>:<key>`, target = Pipedrive id) keeps the
content hash of the last push, so an unchanged record costs its D365 read and no Pipedrive call. An
unmapped record is looked up in Pipedrive before anything is created (product by code, organization by
the D365-account custom field; `pd_directory.py`), so a crash between the create and the id-map write
adopts the record on the retry instead of duplicating it. The target/apply functions here serve the
full diff too (`master_diff.py`), which pushes the records it has just read without reading them again. Nothing is ever deleted in Pipedrive, and nothing financial is
sent: products carry name, code, unit and a list price; organizations name, address and the account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from connector.d365 import odata
from connector.d365.models import Customer, ReleasedProduct
from connector.errors import NotFoundError, PermanentError, RetryLaterError
from connector.flows.context import Checkpoint, FlowContext
from connector.flows.deps import MasterDeps
from connector.flows.items import forget_item
from connector.flows.pd_directory import PipedriveDirectory
from connector.flows.runner import JobHandle, JobRunner, Run
from connector.mapping.masters import content_hash, organization_from_customer, product_from_released
from connector.pipedrive.models import Product, ProductInput, ProductPrice, ProductPriceInput
from connector.queues import MasterPush
from connector.state.idmap import IdMapEntry
from connector.state.jobs import LOCK_JOB

log = logging.getLogger(__name__)
LEDGER_FIELDS = ["Name", "AccountingCurrency"]
PRODUCT_MAP = "pd-product"
ORG_MAP = "pd-org"
LOCK_LEASE_SECONDS = 60
LOCK_WAIT_SECONDS = 10.0
Outcome = Literal[
    "created",
    "updated",
    "adopted",
    "unchanged",
    "not_found",
    "duplicate",
    "failed",
    "superseded",
    "retry",
    "wait",
    "busy",
    "skipped",
    "early",
]


@dataclass
class PushResult:
    entity: str
    key: str
    legal_entity: str
    outcome: Outcome
    target_id: int | None = None
    reason: str | None = None
    delay: float = 0.0  # retry/wait/busy: when the message should come back

    @property
    def requeue(self) -> bool:
        return self.outcome in ("retry", "wait", "busy", "early")


def source_key(legal_entity: str, key: str) -> str:
    """The id-map row key of a D365 record: `<le>:<key>` (the MasterPush job key too)."""
    return f"{legal_entity.lower()}:{key}"


async def company_currency(deps: MasterDeps, legal_entity: str) -> str | None:
    """The currency of a released product's sales price: its legal entity's accounting currency.

    From the mapping (`legal_entity.accounting_currency`) when given, else read once per runtime from
    D365's `Ledgers` entity (UNCONFIRMED: docs/unconfirmed.md, D21), kept on `deps`. Unknown: None, and
    products are pushed without a price rather than with one in a wrong currency.
    """
    le = legal_entity.lower()
    configured = deps.cfg.legal_entity.accounting_currency.get(le)
    if configured:
        return configured
    known = deps.currencies
    if le not in known:
        ledgers = deps.d365.iter_entities("Ledgers", filter=odata.eq("Name", le), select=LEDGER_FIELDS)
        try:
            rows = [r async for r in ledgers]
        except PermanentError as exc:
            log.warning("accounting currency of %s unknown (%s): products are pushed without a price", le, exc)
            rows = []
        currency = str(rows[0].get("AccountingCurrency") or "").strip().upper() if rows else ""
        known[le] = currency or None
    return known[le]


async def push_master(deps: MasterDeps, message: MasterPush, *, checkpoint: Checkpoint | None = None) -> PushResult:
    """Push one record under the job runner; the result says whether the message must come back later."""
    ctx = FlowContext(message.subject, message.correlation_id, deps.state.audit)
    if checkpoint is not None:
        ctx.checkpoint = checkpoint

    async def body(handle: JobHandle) -> PushResult:
        return await _push(deps, ctx, message)

    run: Run[PushResult] = await deps.runner.run(
        message.job_kind, message.job_key, ctx, body, events="push", detail={"reason": message.reason},
        result_of=lambda r: {"outcome": r.outcome, "target_id": r.target_id},
    )  # fmt: skip
    if run.status == "done" and run.value is not None:
        await ctx.audit("push.done", outcome=run.value.outcome, target_id=run.value.target_id)
        await ctx.step("recorded")
        return run.value
    if run.status == "duplicate":
        return _result(message, "duplicate", ((run.job.result if run.job else None) or {}).get("target_id"))
    target = run.value.target_id if run.value is not None else None
    return _result(message, run.status, target, reason=run.reason, delay=run.delay)  # type: ignore[arg-type]


def _result(
    message: MasterPush,
    outcome: Outcome,
    target_id: int | None = None,
    *,
    reason: str | None = None,
    delay: float = 0.0,
) -> PushResult:
    return PushResult(message.entity, message.key, message.legal_entity.lower(), outcome, target_id, reason, delay)


async def _push(deps: MasterDeps, ctx: FlowContext, message: MasterPush) -> PushResult:
    if message.entity == "product":
        released = await read_product(deps, message.key, message.legal_entity)
        directory = PipedriveDirectory(deps.pipedrive, search_lag=deps.search_lag)
        target = None if released is None else await product_target(deps, message.legal_entity, *released, directory)
    else:
        customer = await read_customer(deps, message.key, message.legal_entity)
        directory = await org_directory(deps)
        target = None if customer is None else await org_target(deps, customer, directory)
    if target is None:
        # Deleted or never there in D365: nothing is deleted in Pipedrive (sellers may still quote it).
        await ctx.audit("master.not_found", level="warning", entity=message.entity, key=message.key)
        return _result(message, "not_found")
    entry = await deps.state.idmap.get(target.kind, source_key(message.legal_entity, message.key))
    outcome, target_id = await apply(deps.runner, ctx, target, entry)
    if outcome != "unchanged":
        await deps.state.idmap.put(target.kind, target.source_key, str(target_id), target.payload_hash)
    return _result(message, outcome, target_id)


@dataclass
class Target:
    """How to write one mapped record; `apply` decides WHEN (hash, id map, find-before-create)."""

    kind: str
    source_key: str  # the id-map row key: `<le>:<key>`
    lock_key: str  # the Pipedrive identity: product code or organization account, case-folded
    payload_hash: str
    # Existing Pipedrive record for an unmapped source. Its argument says whether another worker may
    # have written this identity before (False: its lock row is new, so none of ours ever did).
    find: Callable[[bool], Awaitable[int | None]]
    update: Callable[[int], Awaitable[bool]]  # False when the mapped record is gone in Pipedrive
    create: Callable[[], Awaitable[int]]


async def apply(runner: JobRunner, ctx: FlowContext, target: Target, entry: IdMapEntry | None) -> tuple[Outcome, int]:
    """Write one record unless the id map says it was pushed as it is; the caller records the id map."""
    if entry is not None and entry.content_hash == target.payload_hash and entry.target_key.isdigit():
        await ctx.audit("master.unchanged", target_id=entry.target_key)
        return "unchanged", int(entry.target_key)
    # One writer per Pipedrive record at a time: a product serves every company's item of that code, so
    # two companies' pushes would both miss in the search and both create, or both read-merge-write prices.
    async with _exclusive(runner, target.lock_key) as touched_before:
        outcome: Outcome = "updated"
        target_id = int(entry.target_key) if entry is not None and entry.target_key.isdigit() else None
        if target_id is not None and not await target.update(target_id):
            await ctx.audit("master.target_gone", level="warning", target_id=target_id)
            target_id = None
        if target_id is None:
            # Unmapped (or its record vanished): find before create, so a lost id-map write never duplicates.
            target_id = await target.find(touched_before)
            if target_id is not None:
                await target.update(target_id)
                outcome = "adopted"
            else:
                await ctx.step("before_create")
                target_id = await target.create()
                outcome = "created"
                await ctx.step("after_create")
    await ctx.audit(f"master.{outcome}", target_id=target_id, kind=target.kind)
    return outcome, target_id


_LOCAL_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@contextlib.asynccontextmanager
async def _exclusive(runner: JobRunner, lock_key: str) -> AsyncIterator[bool]:
    """Hold a lease on `lock_key` (a job row, so it spans instances) while writing one Pipedrive record;
    yields whether the row existed before (a writer of ours has held it: it may have created the record).

    Writers in this process queue on a local lock first, so they never poll the row for each other.
    The holder needs a few calls, so wait a little for it; past that, re-queue with a delay.
    """
    local = _LOCAL_LOCKS.get(lock_key)
    if local is None:
        local = _LOCAL_LOCKS[lock_key] = asyncio.Lock()
    async with local:
        got = await runner.wait_for(LOCK_JOB, lock_key, patience=LOCK_WAIT_SECONDS, lease_seconds=LOCK_LEASE_SECONDS)
        if not isinstance(got, JobHandle):  # a lock row is never done or failed; someone broke it
            raise RetryLaterError(f"{lock_key}: lock row is {got.state}", delay=LOCK_WAIT_SECONDS)
        try:
            yield got.job.attempts > 1
        finally:
            await got.release("")


# --- products -----------------------------------------------------------------------------------

ReadProduct = tuple[ReleasedProduct, str | None]


async def read_product(deps: MasterDeps, item_number: str, legal_entity: str) -> ReadProduct | None:
    """The released product and its name (two D365 reads; the diff has both from its paged reads)."""
    d365 = deps.d365
    forget_item(deps.state, legal_entity.lower(), item_number)  # D365 said it changed: orders check it again
    released = await d365.find_item(item_number, legal_entity)
    if released is None:
        return None
    return released, await d365.product_name(item_number, legal_entity)


async def product_target(
    deps: MasterDeps, legal_entity: str, released: ReleasedProduct, name: str | None, directory: PipedriveDirectory
) -> Target:
    currency = await company_currency(deps, legal_entity)
    payload = product_from_released(released, name=name, currency=currency)
    code = payload.code or released.item_number
    pipedrive = deps.pipedrive

    async def find(touched_before: bool) -> int | None:
        found = await directory.product_by_code(code, confirm_miss=touched_before)
        return found.id if found is not None else None

    async def update(product_id: int) -> bool:
        current = await directory.product(product_id)
        if current is None:
            return False
        if shows(current, payload):
            return True  # Pipedrive has it as we would write it (e.g. adopted after a reinstall): no write
        try:
            written = await pipedrive.update_product(product_id, merge_prices(payload, current.prices))
        except NotFoundError:
            return False
        directory.remember_product(written)
        return True

    async def create() -> int:
        created = await pipedrive.create_product(payload)
        directory.remember_product(created)
        return created.id

    key = source_key(legal_entity, released.item_number)
    return Target(PRODUCT_MAP, key, f"product:{code.strip().casefold()}", content_hash(payload), find, update, create)


def shows(current: Product, payload: ProductInput) -> bool:
    """Whether the product already carries everything `payload` would write."""
    if (current.name, current.code, current.unit or None) != (payload.name, payload.code, payload.unit or None):
        return False
    prices = {p.currency.upper(): p.price for p in current.prices}
    return all(prices.get(p.currency.upper()) == p.price for p in payload.prices or [])


def merge_prices(payload: ProductInput, current: list[ProductPrice]) -> ProductInput:
    """PATCH `prices` replaces the whole array (v2 rule): keep every other currency's price (another
    company's push, or a seller's) and, in ours, whatever else a person set there (cost, direct cost
    (v1's `overhead_cost`), notes). We never send a cost or a note of our own."""
    if payload.prices is None:
        return payload
    existing = {p.currency.upper(): p for p in current if len(p.currency) == 3}

    def price(value: float, currency: str, was: ProductPrice | None) -> ProductPriceInput:
        kept = {"cost": was.cost, "direct_cost": was.direct_cost, "notes": was.notes} if was is not None else {}
        return ProductPriceInput(price=value, currency=currency, **{k: v for k, v in kept.items() if v is not None})

    ours = [price(p.price, p.currency, existing.get(p.currency)) for p in payload.prices]
    others = [price(p.price, code, p) for code, p in existing.items() if code not in {o.currency for o in ours}]
    return payload.model_copy(update={"prices": ours + others})


# --- organizations ------------------------------------------------------------------------------


def require_account_field(deps: MasterDeps) -> str:
    field_name = deps.cfg.pipedrive_fields.org_customer_account
    if not field_name:
        # Without the account on the organization there is no exact match: a retry could duplicate.
        raise PermanentError(
            "customers cannot be pushed: set pipedrive_fields.org_customer_account (the organization field "
            "that holds the D365 customer account) in the mapping, then push again"
        )
    return field_name


async def read_customer(deps: MasterDeps, account: str, legal_entity: str) -> Customer | None:
    require_account_field(deps)
    return await deps.d365.find_customer(account, legal_entity)


async def org_directory(deps: MasterDeps, *, listed: bool = False) -> PipedriveDirectory:
    field_code = await deps.org_fields.code_for(require_account_field(deps))
    return PipedriveDirectory(deps.pipedrive, listed=listed, org_field=field_code, search_lag=deps.search_lag)


async def org_target(deps: MasterDeps, customer: Customer, directory: PipedriveDirectory) -> Target:
    payload = organization_from_customer(customer, deps.cfg)
    pipedrive = deps.pipedrive
    custom = await deps.org_fields.to_hashes(payload.custom_fields or {})
    body = payload.model_copy(update={"custom_fields": custom})
    account = customer.customer_account

    async def find(touched_before: bool) -> int | None:
        return await directory.organization_by_account(account, confirm_miss=touched_before)

    async def update(org_id: int) -> bool:
        try:
            await pipedrive.update_organization(org_id, body)
        except NotFoundError:
            directory.forget_organization(org_id)
            return False
        return True

    async def create() -> int:
        created = await pipedrive.create_organization(body)
        directory.remember_organization(created.id, account)
        return created.id

    key = source_key(customer.data_area_id, account)
    return Target(ORG_MAP, key, f"org:{account.strip().casefold()}", content_hash(payload), find, update, create)
