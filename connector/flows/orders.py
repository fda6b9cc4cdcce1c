"""Order build for one won deal (DESIGN.md flow 1): exactly one D365 sales order, or a failed job
with a reason a person can act on.

Exactly-once rests on three things, in this order: the job claim (one worker at a time per deal),
the reference lookup before the create (a crash after the create, before the state write, finds
its order on the next attempt and adopts it), and the single `$batch` changeset (header and lines
commit together or not at all). D365's "record already exists" is adoption, not failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from connector.d365.client import D365Client
from connector.errors import DuplicateError, PermanentError, RetryLaterError, TransientError
from connector.flows.claims import lease_left, release
from connector.flows.context import Checkpoint, FlowContext
from connector.flows.customers import CustomerDeps, resolve_customer
from connector.flows.items import resolve_items
from connector.mapping.config import MappingConfig, OrgFieldSource
from connector.mapping.dimensions import resolve_dimensions
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from connector.mapping.orders import OrderPlan, build_order, legal_entity_for, order_reference
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.fields import CustomFields
from connector.pipedrive.models import Deal, Organization
from connector.queues import OrderBuild
from connector.runtime import Runtime
from connector.state.jobs import LostLeaseError

JOB_KIND = "order"
Outcome = Literal["created", "adopted", "duplicate", "failed", "busy", "superseded"]


@dataclass
class OrderResult:
    deal_id: int
    outcome: Outcome
    order_number: str | None = None
    reason: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


async def build_order_for_deal(
    rt: Runtime, message: OrderBuild, *, checkpoint: Checkpoint | None = None
) -> OrderResult:
    """Run one order build. Transient errors propagate (the queue retries) after the job is released."""
    ctx = FlowContext(f"deal-{message.deal_id}", message.correlation_id, rt.state.audit)
    if checkpoint is not None:
        ctx.checkpoint = checkpoint
    jobs = rt.state.jobs
    key = str(message.deal_id)
    job = await jobs.claim(JOB_KIND, key, worker=rt.worker, lease_seconds=rt.settings.job_lease_seconds)
    if job is None:
        return await _not_claimed(rt, ctx, message)
    await ctx.audit("build.started", reason=message.reason, attempt=job.attempts, worker=rt.worker)
    try:
        await ctx.step("claimed")
        result = await _build(rt, ctx, message.deal_id)
    except LostLeaseError as exc:
        await ctx.audit("build.superseded", level="warning", error=str(exc))
        return OrderResult(message.deal_id, "superseded", reason=str(exc))
    except (TransientError, RetryLaterError) as exc:
        await release(rt.state.jobs, ctx, job, exc, "build.retry")
        raise
    except PermanentError as exc:
        reason = str(exc)
        await jobs.fail(job, reason, {"error": type(exc).__name__})
        await ctx.audit("build.failed", level="error", reason=reason, error=type(exc).__name__)
        return OrderResult(message.deal_id, "failed", reason=reason)
    except BaseException as exc:
        # Unknown error (a bug, a crash hook): give the job back so the message's retry can run it.
        await release(rt.state.jobs, ctx, job, exc, "build.retry")
        raise
    # Write back BEFORE recording done: a crash in between then retries into adoption and writes again
    # (idempotent), whereas after `done` a crash would lose the write-back for good (the retry is a duplicate).
    await _write_back_order_number(rt, ctx, result)
    try:
        await jobs.complete(job, {k: v for k, v in result.detail.items() if v is not None})
    except LostLeaseError as exc:
        # We stalled past the lease and another worker took over (and adopted/created the same order):
        # its record stands; ours is dropped instead of failing the message into a pointless retry.
        await ctx.audit("build.superseded", level="warning", error=str(exc), order_number=result.order_number)
        return OrderResult(message.deal_id, "superseded", order_number=result.order_number, reason=str(exc))
    await ctx.audit("build.done", order_number=result.order_number, outcome=result.outcome)
    await ctx.step("recorded")
    return result


async def _not_claimed(rt: Runtime, ctx: FlowContext, message: OrderBuild) -> OrderResult:
    current = await rt.state.jobs.get(JOB_KIND, str(message.deal_id))
    state = current.state if current else "missing"
    if current is not None and current.state == "done":
        number = (current.result or {}).get("order_number")
        await ctx.audit("build.duplicate", order_number=number, reason=message.reason)
        return OrderResult(message.deal_id, "duplicate", order_number=str(number) if number else None)
    if current is not None and current.lease_live():
        # Another worker holds it; come back after its lease, when it is done (duplicate) or expired.
        delay = lease_left(current)
        await ctx.audit("build.busy", level="debug", holder=current.worker, retry_in=round(delay))
        raise RetryLaterError(f"deal {message.deal_id} is being built by another worker", delay=delay)
    await ctx.audit("build.skipped", level="warning", job_state=state, reason=message.reason)
    return OrderResult(message.deal_id, "failed", reason=f"job is {state}; replay the deal to run it again")


async def _build(rt: Runtime, ctx: FlowContext, deal_id: int) -> OrderResult:
    cfg = rt.mapping
    pipedrive = await rt.pipedrive()
    d365 = await rt.d365()

    deal = await pipedrive.get_deal(deal_id)
    if deal.status != "won":
        raise MappingError(
            f"deal {deal_id} is {deal.status!r}, not won: no order made (it is picked up again if it is won)",
            deal_id=deal_id,
        )
    deal_products = await pipedrive.get_deal_products(deal_id)
    await ctx.step("deal_read")

    legal_entity = legal_entity_for(deal, cfg)
    deal_fields = await rt.custom_fields("deal")
    org_fields = await rt.custom_fields("organization")
    deal_values = await deal_fields.to_names(deal.custom_fields or {})
    reference = order_reference(deal, cfg)

    # A crash after the create and before the state write lands here on the retry: adopt, never re-create.
    existing = await d365.find_order_by_reference(reference, legal_entity)
    if existing is not None:
        await ctx.audit("order.adopted", order_number=existing.sales_order_number, reference=reference)
        return _result(deal, "adopted", existing.sales_order_number, legal_entity, reference, lines=None)

    # Items before the customer: an unmapped or unreleased item (the common permanent failure) must
    # fail the job before anything is written to D365, not after a new customer was created.
    lines = await resolve_items(deal, deal_products, legal_entity, pipedrive=pipedrive, d365=d365, state=rt.state)
    org_loader = _OrgLoader(pipedrive, org_fields, deal, deal_values)
    customer = await resolve_customer(
        ctx,
        CustomerDeps(cfg, rt.state, pipedrive, d365, org_fields, rt.worker),
        deal=deal,
        legal_entity=legal_entity,
        load_org=org_loader,
    )
    await ctx.step("customer_resolved")
    # The organization is read only when its fields feed a dimension, or (above) when the customer is new.
    org, fields = await org_loader() if _dimensions_use_org(cfg) else (None, ResolvedFields(deal=deal_values))
    dimensions = resolve_dimensions(deal, org, cfg, fields)
    plan = build_order(deal, lines, customer.account, cfg, legal_entity=legal_entity, dimensions=dimensions)
    await ctx.audit(
        "order.planned",
        reference=plan.reference,
        legal_entity=legal_entity,
        customer=customer.account,
        customer_how=customer.how,
        lines=len(plan.lines),
        dimensions=dimensions or None,
    )
    await ctx.step("before_create")
    number, outcome = await _create(ctx, d365, plan)
    await ctx.step("after_create")
    result = _result(deal, outcome, number, legal_entity, reference, lines=len(plan.lines))
    result.detail["customer"] = customer.account
    result.detail["customer_how"] = customer.how
    return result


class _OrgLoader:
    """The deal's organization and its custom fields by name, read once and only on demand."""

    def __init__(
        self, pipedrive: PipedriveClient, org_fields: CustomFields, deal: Deal, deal_values: dict[str, Any]
    ) -> None:
        self._pipedrive, self._org_fields, self._deal, self._deal_values = pipedrive, org_fields, deal, deal_values
        self._loaded: tuple[Organization | None, ResolvedFields] | None = None

    async def __call__(self) -> tuple[Organization | None, ResolvedFields]:
        if self._loaded is None:
            org = await self._pipedrive.get_organization(self._deal.org_id) if self._deal.org_id is not None else None
            values = await self._org_fields.to_names(org.custom_fields or {}) if org is not None else {}
            self._loaded = (org, ResolvedFields(deal=self._deal_values, organization=values))
        return self._loaded


def _dimensions_use_org(cfg: MappingConfig) -> bool:
    return any(isinstance(src, OrgFieldSource) for src in cfg.dimensions.sources.values())


async def _create(ctx: FlowContext, d365: D365Client, plan: OrderPlan) -> tuple[str, Outcome]:
    try:
        number, lines = await d365.create_sales_order(plan.header, plan.lines)
    except DuplicateError as exc:
        existing = await d365.find_order_by_reference(plan.reference, plan.legal_entity)
        if existing is None:
            # Not ours to adopt (e.g. the order number is taken by another order): retrying cannot help.
            raise PermanentError(
                f"D365 refused order {plan.reference!r} as a duplicate, but no order in {plan.legal_entity} carries "
                f"that reference ({exc}); free the order number or change order.number_template, then replay"
            ) from exc
        await ctx.audit("order.adopted", order_number=existing.sales_order_number, via="duplicate")
        return existing.sales_order_number, "adopted"
    await ctx.audit("order.created", order_number=number, lines=len(lines))
    return number, "created"


def _result(
    deal: Deal, outcome: Outcome, number: str, legal_entity: str, reference: str, *, lines: int | None
) -> OrderResult:
    return OrderResult(
        deal.id,
        outcome,
        order_number=number,
        detail={
            "order_number": number,
            "legal_entity": legal_entity,
            "reference": reference,
            "lines": lines,
            "outcome": outcome,
        },
    )


async def _write_back_order_number(rt: Runtime, ctx: FlowContext, result: OrderResult) -> None:
    """Optional: the order number on the deal's configured field. A failure here never undoes the order."""
    cfg = rt.mapping
    name = cfg.pipedrive_fields.deal_order_number
    if not cfg.order.write_back_order_number or not name or not result.order_number:
        return
    try:
        pipedrive = await rt.pipedrive()
        deal_fields = await rt.custom_fields("deal")
        await pipedrive.update_deal_fields(result.deal_id, await deal_fields.to_hashes({name: result.order_number}))
    except (TransientError, PermanentError) as exc:
        await ctx.audit("deal.write_back_failed", level="warning", error=str(exc))
        return
    await ctx.audit("deal.written_back", field=name, order_number=result.order_number)
