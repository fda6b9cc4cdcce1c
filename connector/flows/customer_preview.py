"""What `resolve_customer` would do for a deal, without writing anything (for `preview` and `reconcile`).

Same evidence in the same order (id map, the organization's account field, the match rules) and the
same failures; where a build would create a customer, the answer is the CustomersV3 payload it would
send. It uses the resolver's own `_find`, so matching is written once.
"""

from __future__ import annotations

from connector.flows.customers import CustomerResolution, OrgLoader, _find, idmap_key
from connector.flows.deps import CustomerDeps
from connector.mapping.customers import NewCustomer, plan_customer
from connector.mapping.errors import MappingError
from connector.pipedrive.models import Deal


async def customer_decision(
    deps: CustomerDeps, *, deal: Deal, legal_entity: str, load_org: OrgLoader
) -> CustomerResolution | NewCustomer:
    if deal.org_id is None and deal.person_id is None:
        raise MappingError(f"deal {deal.id}: has no organization or person; link the customer in Pipedrive")
    cached = await deps.state.idmap.get("customer", idmap_key(legal_entity, deal))
    if cached is not None:
        return CustomerResolution(cached.target_key, "idmap")
    org, fields = await load_org()
    found = await _find(deps, deal=deal, org=org, fields=fields, legal_entity=legal_entity, recovering=False)
    if found is not None:
        return found
    if not deps.cfg.customer.create_missing:  # the build's `_create` refuses with this same reason
        name = org.name if org else f"person {deal.person_id}"
        raise MappingError(
            f"deal {deal.id}: no D365 customer matches {name!r} in {legal_entity} and customer.create_missing "
            "is off; create the customer in D365 or put its account on the organization"
        )
    person = await deps.pipedrive.get_person(deal.person_id) if deal.person_id is not None else None
    return plan_customer(org, person, deps.cfg, legal_entity, currency=deal.currency or None)
