"""The planning half of an order build, for `preview` and `reconcile`: read the deal, plan the order.

The steps are the build's (`flows/orders.py` `_build`): the same reads, `resolve_items`, the same
dimensions and `build_order`; only the customer step differs (the build resolves and may create the
customer; the preview asks what it would do). tests/cockpit/test_preview.py proves that a preview
equals what the build then writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.flows.deps import OrderDeps
from connector.flows.items import sorted_lines
from connector.mapping.config import MappingConfig
from connector.mapping.dimensions import resolve_dimensions
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from connector.mapping.orders import OrderPlan, build_order, legal_entity_for, order_reference
from connector.mapping.sections import OrgFieldSource
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.fields import CustomFields
from connector.pipedrive.models import Deal, DealProduct, Organization


class OrgLoader:
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


def dimensions_use_org(cfg: MappingConfig) -> bool:
    return any(isinstance(src, OrgFieldSource) for src in cfg.dimensions.sources.values())


@dataclass
class DealFacts:
    """A won deal as the build reads it: the deal, its lines, its company and reference, its fields."""

    deal: Deal
    deal_products: list[DealProduct]
    legal_entity: str
    reference: str
    deal_values: dict[str, Any]
    load_org: OrgLoader


async def read_deal(deps: OrderDeps, deal_id: int, *, require_won: bool = True) -> DealFacts:
    """Re-read the deal (never trust a webhook body); a deal that is not won is a MappingError.

    `require_won=False` lets a preview plan an open deal as it would be built once won.
    """
    cfg, pipedrive = deps.cfg, deps.pipedrive
    deal = await pipedrive.get_deal(deal_id)
    if require_won and deal.status != "won":
        raise MappingError(
            f"deal {deal_id} is {deal.status!r}, not won: no order made (it is picked up again if it is won)",
            deal_id=deal_id,
        )
    deal_products = sorted_lines(await pipedrive.get_deal_products(deal_id))
    deal_values = await deps.deal_fields.to_names(deal.custom_fields or {})
    return DealFacts(
        deal=deal,
        deal_products=deal_products,
        legal_entity=legal_entity_for(deal, cfg),
        reference=order_reference(deal, cfg),
        deal_values=deal_values,
        load_org=OrgLoader(pipedrive, deps.org_fields, deal, deal_values),
    )


async def plan_for(
    facts: DealFacts,
    lines: list[tuple[DealProduct, Any]],
    account: str,
    cfg: MappingConfig,
    *,
    line_order: list[int] | None = None,
) -> tuple[OrderPlan, str]:
    """(the order plan, its dimension display value) for the deal, its resolved lines and customer.

    `facts.legal_entity`/`facts.reference` are the deal's own, or (in a build) those frozen on its job.
    """
    # The organization is read only when its fields feed a dimension (or, before, when the customer is new).
    org, fields = await facts.load_org() if dimensions_use_org(cfg) else (None, ResolvedFields(deal=facts.deal_values))
    dimensions = resolve_dimensions(facts.deal, org, cfg, fields)
    plan = build_order(
        facts.deal, lines, account, cfg, legal_entity=facts.legal_entity, dimensions=dimensions,
        reference=facts.reference, line_order=line_order,
    )  # fmt: skip
    return plan, dimensions
