"""Customer match-or-create for a deal (DESIGN.md flow 2).

Order of evidence: id map (Pipedrive org -> account, per legal entity) -> the account stored on the
organization's configured custom field -> the configured D365 match rules -> create. Whatever is
found or made is written back to the organization's field and the id map, so the next deal of the
same organization is an exact match with no D365 call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from connector.d365.client import D365Client
from connector.errors import NotFoundError
from connector.flows.context import FlowContext
from connector.mapping.config import MappingConfig
from connector.mapping.customers import country_for, match_key, new_customer, org_account
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.fields import CustomFields
from connector.pipedrive.models import Deal, Organization, OrganizationInput
from connector.state.store import StateStore

How = Literal["idmap", "account_field", "matched", "created"]


@dataclass(frozen=True)
class CustomerResolution:
    account: str
    how: How


def idmap_key(legal_entity: str, deal: Deal) -> str:
    """Organization deals map by org id; a person-only deal maps by person id."""
    if deal.org_id is not None:
        return f"{legal_entity}:org:{deal.org_id}"
    return f"{legal_entity}:person:{deal.person_id}"


async def resolve_customer(
    ctx: FlowContext,
    *,
    deal: Deal,
    org: Organization | None,
    fields: ResolvedFields,
    legal_entity: str,
    cfg: MappingConfig,
    state: StateStore,
    pipedrive: PipedriveClient,
    d365: D365Client,
    org_fields: CustomFields,
) -> CustomerResolution:
    if deal.org_id is None and deal.person_id is None:
        raise MappingError(f"deal {deal.id}: has no organization or person; link the customer in Pipedrive")
    key = idmap_key(legal_entity, deal)
    cached = await state.idmap.get("customer", key)
    if cached is not None:
        # An earlier attempt created or matched it but may have died before the write-back: finish that
        # (only into an empty field: an account a person put there is never overwritten).
        if org is not None and cfg.pipedrive_fields.org_customer_account and not org_account(org, cfg, fields):
            await _write_back(ctx, org, cached.target_key, cfg, pipedrive, org_fields)
        return CustomerResolution(cached.target_key, "idmap")

    resolution = await _find(ctx, deal=deal, org=org, fields=fields, legal_entity=legal_entity, cfg=cfg, d365=d365)
    if resolution is None:
        if not cfg.customer.create_missing:
            name = org.name if org else f"person {deal.person_id}"
            raise MappingError(
                f"deal {deal.id}: no D365 customer matches {name!r} in {legal_entity} and customer.create_missing "
                "is off; create the customer in D365 or put its account on the organization"
            )
        person = await pipedrive.get_person(deal.person_id) if deal.person_id is not None else None
        payload = new_customer(org, person, cfg, legal_entity, currency=deal.currency or None)
        await ctx.step("before_customer_create")
        created = await d365.create_customer(payload)
        resolution = CustomerResolution(created.customer_account, "created")
        await ctx.audit("customer.created", account=created.customer_account, legal_entity=legal_entity)
    else:
        await ctx.audit(f"customer.{resolution.how}", account=resolution.account, legal_entity=legal_entity)

    await state.idmap.put("customer", key, resolution.account)
    if org is not None and cfg.pipedrive_fields.org_customer_account and resolution.how != "account_field":
        await _write_back(ctx, org, resolution.account, cfg, pipedrive, org_fields)
    return resolution


async def _find(
    ctx: FlowContext,
    *,
    deal: Deal,
    org: Organization | None,
    fields: ResolvedFields,
    legal_entity: str,
    cfg: MappingConfig,
    d365: D365Client,
) -> CustomerResolution | None:
    for rule in cfg.customer.match_rules:
        if org is None:
            break  # person-only deals have nothing to match on: a new customer is created
        if rule == "account_field":
            account = org_account(org, cfg, fields)
            if not account:
                continue
            try:
                found = await d365.find_customer(account, legal_entity)
            except NotFoundError:
                found = None
            if found is None:
                raise MappingError(
                    f"organization {org.id} {org.name!r}: its D365 account {account!r} does not exist in "
                    f"{legal_entity}; correct the field {cfg.pipedrive_fields.org_customer_account!r}"
                )
            return CustomerResolution(found.customer_account, "account_field")
        country = country_for(org, cfg, legal_entity) if rule == "name_country" else None
        candidates = await d365.find_customers_by_name(org.name.strip(), country, legal_entity)
        wanted = match_key(org.name, country)
        matches = sorted(
            {
                c.customer_account
                for c in candidates
                if match_key(c.display_name, c.address_country_region_id if country else None) == wanted
            }
        )
        if len(matches) == 1:
            return CustomerResolution(matches[0], "matched")
        if len(matches) > 1:
            raise MappingError(
                f"organization {org.id} {org.name!r}: matches several D365 customers in {legal_entity} "
                f"({', '.join(matches)}); put the right account on the organization's field "
                f"{cfg.pipedrive_fields.org_customer_account or '(configure pipedrive_fields.org_customer_account)'}"
            )
    return None


async def _write_back(
    ctx: FlowContext,
    org: Organization,
    account: str,
    cfg: MappingConfig,
    pipedrive: PipedriveClient,
    org_fields: CustomFields,
) -> None:
    """Store the account on the organization (a reference, not financial data) for exact matches later."""
    name = cfg.pipedrive_fields.org_customer_account
    assert name is not None

    custom = await org_fields.to_hashes({name: account})
    await pipedrive.update_organization(org.id, OrganizationInput(custom_fields=custom))
    await ctx.audit("customer.written_back", org_id=org.id, account=account)
