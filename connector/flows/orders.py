"""Order build for one won deal (docs/architecture.md, flow 1): exactly one D365 sales order with all
its lines, or a failed job with a reason a person can act on.

Exactly-once rests on the job (one worker at a time per deal, run by `JobRunner`), the facts frozen on it
at the first attempt (reference, legal entity, numbering, line order: an edited deal is never looked up
under another reference or company), and the write rules of `order_write` (announce every create; after a
lost answer look before creating again; D365's "record already exists" is adoption, not failure).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.errors import PermanentError, TransientError
from connector.flows.context import Checkpoint, FlowContext
from connector.flows.customers import resolve_customer
from connector.flows.deps import OrderDeps
from connector.flows.items import resolve_items
from connector.flows.order_plan import plan_for, read_deal
from connector.flows.order_write import Frozen, Written, write_order
from connector.flows.runner import JobHandle, Run
from connector.mapping.config import MappingConfig
from connector.mapping.money import order_total_check
from connector.mapping.orders import OrderPlan, legal_entity_for, order_number, order_reference
from connector.pipedrive.models import Deal, DealProduct
from connector.queues import OrderBuild
from connector.state.jobs import ORDER_JOB

Outcome = Literal[
    "created", "adopted", "duplicate", "failed", "busy", "superseded", "retry", "wait", "skipped", "early"
]


@dataclass
class OrderResult:
    deal_id: int
    outcome: Outcome
    order_number: str | None = None
    reason: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    delay: float = 0.0  # retry/wait/busy: when the message should come back
    deal_archived: bool = False  # Pipedrive refuses API edits of an archived deal: no write-back

    @property
    def requeue(self) -> bool:
        return self.outcome in ("retry", "wait", "busy", "early")


async def build_order_for_deal(
    deps: OrderDeps, message: OrderBuild, *, checkpoint: Checkpoint | None = None
) -> OrderResult:
    """Run one order build; the result says whether the message is finished or must come back later."""
    ctx = FlowContext(f"deal-{message.deal_id}", message.correlation_id, deps.state.audit)
    if checkpoint is not None:
        ctx.checkpoint = checkpoint

    async def body(handle: JobHandle) -> OrderResult:
        await ctx.step("claimed")
        result = await _build(deps, ctx, handle, message.deal_id)
        # Write back BEFORE the job is recorded done: a crash in between retries into adoption and writes
        # again (idempotent), whereas after `done` a crash would lose the write-back for good.
        await _write_back_order_number(deps, ctx, result)
        return result

    run: Run[OrderResult] = await deps.runner.run(
        ORDER_JOB, str(message.deal_id), ctx, body, result_of=_job_result, events="build",
        detail={"reason": message.reason},
    )  # fmt: skip
    return await _outcome(ctx, message, run)


async def _outcome(ctx: FlowContext, message: OrderBuild, run: Run[OrderResult]) -> OrderResult:
    deal_id = message.deal_id
    if run.status == "done" and run.value is not None:
        await ctx.audit("build.done", order_number=run.value.order_number, outcome=run.value.outcome)
        await ctx.step("recorded")
        return run.value
    if run.status == "duplicate":
        number = ((run.job.result if run.job else None) or {}).get("order_number")
        return OrderResult(deal_id, "duplicate", order_number=str(number) if number else None)
    if run.status == "superseded" and run.value is not None:
        return OrderResult(deal_id, "superseded", order_number=run.value.order_number, reason=run.reason)
    return OrderResult(deal_id, run.status, reason=run.reason, delay=run.delay)  # type: ignore[arg-type]


def _job_result(result: OrderResult) -> dict[str, Any]:
    return {k: v for k, v in result.detail.items() if v is not None}


async def _build(deps: OrderDeps, ctx: FlowContext, handle: JobHandle, deal_id: int) -> OrderResult:
    cfg, d365 = deps.cfg, deps.d365
    facts = await read_deal(deps, deal_id)  # never trust the webhook body; not won -> a reason, no order
    await ctx.step("deal_read")
    frozen, line_order = await _freeze(handle, ctx, facts.deal, facts.deal_products, cfg)
    facts = dataclasses.replace(facts, legal_entity=frozen.legal_entity, reference=frozen.reference)

    # Items before the customer: an unmapped or unreleased item (the common permanent failure) must
    # fail the job before anything is written to D365, not after a new customer was created.
    lines = await resolve_items(
        facts.deal, facts.deal_products, frozen.legal_entity, pipedrive=deps.pipedrive, d365=d365, state=deps.state
    )
    customer = await resolve_customer(
        ctx, deps, deal=facts.deal, legal_entity=frozen.legal_entity, load_org=facts.load_org
    )
    await ctx.step("customer_resolved")
    plan, dimensions = await plan_for(facts, lines, customer.account, cfg, line_order=line_order)
    plan = _pin(plan, frozen)
    await ctx.audit(
        "order.planned",
        reference=plan.reference,
        legal_entity=frozen.legal_entity,
        numbering=frozen.numbering,
        customer=customer.account,
        customer_how=customer.how,
        lines=len(plan.lines),
        dimensions=dimensions or None,
    )
    written = await write_order(ctx, handle, d365, plan, frozen)
    result = _result(facts.deal, written, frozen, plan, customer.account, customer.how)
    await _check_total(ctx, cfg, plan, written, result)
    return result


async def _check_total(
    ctx: FlowContext, cfg: MappingConfig, plan: OrderPlan, written: Written, result: OrderResult
) -> None:
    """The job records the deal value and D365's order total; a difference beyond rounding fails the job."""
    amounts = [written.line_amounts.get(line.customers_line_number or 0) for line in plan.lines]
    if any(amount is None for amount in amounts):
        return  # an adopted order whose lines were not all read (never the case today): nothing to compare
    record, problem = order_total_check(
        plan.deal_value, plan.expected_total, [a for a in amounts if a is not None], cfg
    )
    result.detail.update(record)
    if problem is not None:
        await ctx.audit("order.total_mismatch", level="error", order_number=written.order_number, **record)
        raise PermanentError(f"deal {result.deal_id}: order {written.order_number} was written, but {problem}")


async def _freeze(
    handle: JobHandle, ctx: FlowContext, deal: Deal, deal_products: list[DealProduct], cfg: MappingConfig
) -> tuple[Frozen, list[int]]:
    """The deal's reference, company, numbering and line order, fixed on the job at its first attempt."""
    context = handle.context
    if "reference" not in context:
        frozen = Frozen(
            reference=order_reference(deal, cfg),
            reference_field=cfg.order.reference_field,
            legal_entity=legal_entity_for(deal, cfg),
            numbering=cfg.order.numbering,
            order_number=order_number(deal, cfg),
        )
        line_order = [item.id for item in deal_products]
        await handle.remember(
            reference=frozen.reference,
            reference_field=frozen.reference_field,
            legal_entity=frozen.legal_entity,
            numbering=frozen.numbering,
            planned_number=frozen.order_number,
            line_order=line_order,
        )
        return frozen, line_order
    frozen = Frozen(
        reference=str(context["reference"]),
        reference_field=str(context["reference_field"]),
        legal_entity=str(context["legal_entity"]),
        numbering=str(context["numbering"]),
        order_number=context.get("planned_number"),
    )
    changed = {
        name: now
        for name, now, then in (
            ("reference", order_reference(deal, cfg), frozen.reference),
            ("legal_entity", legal_entity_for(deal, cfg), frozen.legal_entity),
            ("numbering", cfg.order.numbering, frozen.numbering),
        )
        if now != then
    }
    if changed:
        await ctx.audit("build.frozen_kept", level="warning", frozen=context.get("reference"), now=changed)
    return frozen, [int(i) for i in context.get("line_order", [])]


def _pin(plan: OrderPlan, frozen: Frozen) -> OrderPlan:
    """The plan with the frozen number and reference field, whatever the mapping says today."""
    by_field: dict[str, str | None] = {"customers_order_reference": None, "customer_requisition_number": None}
    by_field["customers_order_reference" if frozen.reference_field == "CustomersOrderReference"
             else "customer_requisition_number"] = frozen.reference  # fmt: skip
    header = plan.header.model_copy(update={"sales_order_number": frozen.order_number, **by_field})
    return plan.model_copy(update={"header": header})


def _result(
    deal: Deal, written: Written, frozen: Frozen, plan: OrderPlan, customer: str, customer_how: str
) -> OrderResult:
    return OrderResult(
        deal.id,
        written.outcome,
        order_number=written.order_number,
        deal_archived=deal.is_archived,
        detail={
            "order_number": written.order_number,
            "legal_entity": frozen.legal_entity,
            "reference": frozen.reference,
            "numbering": frozen.numbering,
            "lines": len(plan.lines),
            "lines_added": written.lines_added,
            "outcome": written.outcome,
            "customer": customer,
            "customer_how": customer_how,
        },
    )


async def _write_back_order_number(deps: OrderDeps, ctx: FlowContext, result: OrderResult) -> None:
    """Optional: the order number on the deal's configured field. A failure here never undoes the order."""
    cfg = deps.cfg
    name = cfg.pipedrive_fields.deal_order_number
    if not cfg.order.write_back_order_number or not name or not result.order_number:
        return
    if result.deal_archived:
        # Archived deals "will not be editable through the API" (Pipedrive changelog, Jul 2025): say so
        # instead of spending a call on a refusal. The order number stays on the job and in the audit.
        await ctx.audit("deal.write_back_skipped", level="warning", reason="the deal is archived in Pipedrive")
        return
    try:
        custom = await deps.deal_fields.to_hashes({name: result.order_number})
        await deps.pipedrive.update_deal_fields(result.deal_id, custom)
    except (TransientError, PermanentError) as exc:
        await ctx.audit("deal.write_back_failed", level="warning", error=str(exc))
        return
    await ctx.audit("deal.written_back", field=name, order_number=result.order_number)
