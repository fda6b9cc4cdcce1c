"""`ml-connector preview DEAL`: the sales order the connector would write for a deal, writing nothing.

It runs the build's own planning (`connector.flows.order_plan`, `resolve_items`, `customer_decision`),
so its header and lines are what a build sends and its failures are a build's failure reasons. Reads
only: no order, no customer, no write-back, not even an id-map entry.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from connector.errors import PermanentError
from connector.flows.customer_preview import customer_decision
from connector.flows.customers import CustomerResolution
from connector.flows.deps import OrderDeps
from connector.flows.items import resolve_items
from connector.flows.order_plan import DealFacts, plan_for, read_deal
from connector.mapping.customers import NewCustomer
from connector.mapping.errors import MappingError
from connector.mapping.money import show
from connector.mapping.orders import OrderPlan

NEW_ACCOUNT = "(new customer)"


class CustomerChoice(BaseModel):
    account: str | None  # None: D365's number sequence would give the new customer its account
    how: str  # idmap, account_field, matched (an existing customer) or new
    new_customer: dict[str, Any] | None = None  # the CustomersV3 payload a build would create


class Preview(BaseModel):
    deal_id: int
    ok: bool
    deal_status: str | None = None  # open / lost deals are planned as a build would plan them once won
    problems: list[str] = []
    legal_entity: str | None = None
    reference: str | None = None
    existing_order: str | None = None  # an order already carries the reference: a build adopts it
    customer: CustomerChoice | None = None
    dimensions: str | None = None
    currency: str | None = None
    deal_value: str | None = None
    expected_total: str | None = None
    header: dict[str, Any] | None = None  # the SalesOrderHeadersV2 body, as a build sends it
    lines: list[dict[str, Any]] = []  # the SalesOrderLines bodies, in order


async def plan_deal(deps: OrderDeps, facts: DealFacts) -> tuple[OrderPlan, str, CustomerChoice]:
    """The order plan a build would make for the deal now, read-only (PermanentError as a build fails)."""
    cfg = deps.cfg
    lines = await resolve_items(
        facts.deal, facts.deal_products, facts.legal_entity, pipedrive=deps.pipedrive, d365=deps.d365,
        state=_ReadOnlyState(deps.state),  # type: ignore[arg-type]  # a checked item is not remembered
    )  # fmt: skip
    decision = await customer_decision(deps, deal=facts.deal, legal_entity=facts.legal_entity, load_org=facts.load_org)
    if isinstance(decision, CustomerResolution):
        choice = CustomerChoice(account=decision.account, how=decision.how)
    else:
        choice = _new(decision)
    plan, dimensions = await plan_for(facts, lines, choice.account or NEW_ACCOUNT, cfg)
    return plan, dimensions, choice


class _ReadOnlyIdMap:
    def __init__(self, idmap: Any) -> None:
        self._idmap = idmap

    async def get(self, kind: str, key: str) -> Any:
        return await self._idmap.get(kind, key)

    async def put(self, *args: Any, **kwargs: Any) -> None:
        return None  # a preview writes nothing, not even a cache entry


class _ReadOnlyState:
    """The state store as `resolve_items` uses it (id-map reads), with its writes dropped."""

    def __init__(self, state: Any) -> None:
        self.idmap = _ReadOnlyIdMap(state.idmap)


def _new(decision: NewCustomer) -> CustomerChoice:
    payload = decision.payload.to_payload()
    return CustomerChoice(account=decision.payload.customer_account, how="new", new_customer=payload)


async def preview_deal(deps: OrderDeps, deal_id: int) -> Preview:
    try:
        facts = await read_deal(deps, deal_id, require_won=False)
    except PermanentError as exc:
        return Preview(deal_id=deal_id, ok=False, problems=_problems(exc))
    existing = await deps.d365.find_order_by_reference(
        facts.reference, facts.legal_entity, field=deps.cfg.order.reference_field
    )
    preview = Preview(
        deal_id=deal_id,
        ok=False,
        deal_status=facts.deal.status,
        legal_entity=facts.legal_entity,
        reference=facts.reference,
        existing_order=existing.sales_order_number if existing is not None else None,
    )
    try:
        plan, dimensions, choice = await plan_deal(deps, facts)
    except PermanentError as exc:
        preview.problems = _problems(exc)
        return preview
    preview.ok = True
    preview.customer = choice
    preview.dimensions = dimensions or None
    preview.currency = plan.header.currency_code
    preview.deal_value = None if plan.deal_value is None else show(plan.deal_value)
    preview.expected_total = show(plan.expected_total or Decimal(0))
    preview.header = plan.header.to_payload()
    preview.lines = [line.to_payload() for line in plan.lines]
    return preview


def _problems(exc: PermanentError) -> list[str]:
    """A mapping error lists every reason it found; any other refusal is one reason."""
    return list(exc.problems) if isinstance(exc, MappingError) and exc.problems else [str(exc)]
