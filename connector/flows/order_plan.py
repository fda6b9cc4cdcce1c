"""The planning half of an order build, for `preview` and `reconcile`: read the deal, plan the order.

The steps are the build's (`flows/orders.py` `_build`): the same reads, `resolve_items`, the same
dimensions and `build_order`; only the customer step differs (the build resolves and may create the
customer; the preview asks what it would do). tests/cockpit/test_preview.py proves that a preview
equals what the build then writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The build's own organization loader and dimension rule (private there; this module shares the build's steps).
from connector.flows.orders import _dimensions_use_org, _OrgLoader
from connector.mapping.config import MappingConfig
from connector.mapping.dimensions import resolve_dimensions
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from connector.mapping.orders import OrderPlan, build_order, legal_entity_for, order_reference
from connector.pipedrive.models import Deal, DealProduct
from connector.runtime import Runtime


@dataclass
class DealFacts:
    """A won deal as the build reads it: the deal, its lines, its company and reference, its fields."""

    deal: Deal
    deal_products: list[DealProduct]
    legal_entity: str
    reference: str
    deal_values: dict[str, Any]
    load_org: _OrgLoader


async def read_deal(rt: Runtime, deal_id: int, *, require_won: bool = True) -> DealFacts:
    """Re-read the deal (never trust a webhook body); a deal that is not won is a MappingError.

    `require_won=False` lets a preview plan an open deal as it would be built once won.
    """
    cfg = rt.mapping
    pipedrive = await rt.pipedrive()
    deal = await pipedrive.get_deal(deal_id)
    if require_won and deal.status != "won":
        raise MappingError(
            f"deal {deal_id} is {deal.status!r}, not won: no order made (it is picked up again if it is won)",
            deal_id=deal_id,
        )
    deal_products = await pipedrive.get_deal_products(deal_id)
    deal_fields = await rt.custom_fields("deal")
    org_fields = await rt.custom_fields("organization")
    deal_values = await deal_fields.to_names(deal.custom_fields or {})
    return DealFacts(
        deal=deal,
        deal_products=deal_products,
        legal_entity=legal_entity_for(deal, cfg),
        reference=order_reference(deal, cfg),
        deal_values=deal_values,
        load_org=_OrgLoader(pipedrive, org_fields, deal, deal_values),
    )


async def plan_for(
    facts: DealFacts, lines: list[tuple[DealProduct, Any]], account: str, cfg: MappingConfig
) -> tuple[OrderPlan, str]:
    """(the order plan, its dimension display value) for the deal, its resolved lines and customer."""
    # The organization is read only when its fields feed a dimension (or, before, when the customer is new).
    org, fields = await facts.load_org() if _dimensions_use_org(cfg) else (None, ResolvedFields(deal=facts.deal_values))
    dimensions = resolve_dimensions(facts.deal, org, cfg, fields)
    plan = build_order(facts.deal, lines, account, cfg, legal_entity=facts.legal_entity, dimensions=dimensions)
    return plan, dimensions
