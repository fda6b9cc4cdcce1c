"""Customer match-or-create for a deal (DESIGN.md flow 2).

Order of evidence: id map (Pipedrive org -> account, per legal entity) -> the account stored on the
organization's configured custom field -> the configured D365 match rules -> create.

Two guarantees, across scaled-out instances:
- One resolver per organization at a time: a `customer` job row is claimed like an order job, so two
  first deals of the same new organization cannot both create a D365 customer; the loser re-queues.
- The id map is written LAST (after the write-back to the organization), so an id-map hit means all
  is done and costs no Pipedrive or D365 call. An attempt that died after creating the customer is
  taken over (attempts > 1) and first looks the customer up by name and country, so it adopts the
  customer it made instead of making another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from connector.d365.client import D365Client
from connector.d365.models import Customer, CustomerCreate
from connector.errors import DuplicateError, NotFoundError, RetryLaterError
from connector.flows.claims import lease_left
from connector.flows.context import FlowContext
from connector.mapping.config import MappingConfig, MatchRule
from connector.mapping.customers import country_for, match_key, normalize_name, org_account, plan_customer
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from connector.pipedrive.client import PipedriveClient
from connector.pipedrive.fields import CustomFields
from connector.pipedrive.models import Deal, Organization, OrganizationInput
from connector.state.jobs import LostLeaseError
from connector.state.store import StateStore

How = Literal["idmap", "account_field", "matched", "created"]
JOB_KIND = "customer"
LEASE_SECONDS = 120
WAIT_FOR_HOLDER_SECONDS = 15.0
# Loads the deal's organization and its resolved custom fields when (and only when) they are needed.
OrgLoader = Callable[[], Awaitable[tuple[Organization | None, ResolvedFields]]]


@dataclass(frozen=True)
class CustomerResolution:
    account: str
    how: How


@dataclass
class CustomerDeps:
    cfg: MappingConfig
    state: StateStore
    pipedrive: PipedriveClient
    d365: D365Client
    org_fields: CustomFields
    worker: str


def idmap_key(legal_entity: str, deal: Deal) -> str:
    """Organization deals map by org id; a person-only deal maps by person id."""
    if deal.org_id is not None:
        return f"{legal_entity}:org:{deal.org_id}"
    return f"{legal_entity}:person:{deal.person_id}"


async def resolve_customer(
    ctx: FlowContext, deps: CustomerDeps, *, deal: Deal, legal_entity: str, load_org: OrgLoader
) -> CustomerResolution:
    if deal.org_id is None and deal.person_id is None:
        raise MappingError(f"deal {deal.id}: has no organization or person; link the customer in Pipedrive")
    key = idmap_key(legal_entity, deal)
    cached = await deps.state.idmap.get("customer", key)
    if cached is not None:
        return CustomerResolution(cached.target_key, "idmap")

    jobs = deps.state.jobs
    job = await jobs.claim(JOB_KIND, key, worker=deps.worker, lease_seconds=LEASE_SECONDS)
    if job is None:
        return await _resolved_elsewhere(deps, key)
    try:
        org, fields = await load_org()
        resolution = await _find(deps, deal=deal, org=org, fields=fields, legal_entity=legal_entity,
                                 recovering=job.attempts > 1)  # fmt: skip
        if resolution is None:
            resolution = await _create(ctx, deps, deal=deal, org=org, legal_entity=legal_entity)
        else:
            await ctx.audit(f"customer.{resolution.how}", account=resolution.account, legal_entity=legal_entity)
        if org is not None and deps.cfg.pipedrive_fields.org_customer_account and resolution.how != "account_field":
            await _write_back(ctx, deps, org, resolution.account)
        await deps.state.idmap.put("customer", key, resolution.account)
        await jobs.complete(job, {"account": resolution.account, "how": resolution.how})
    except BaseException as exc:
        with contextlib.suppress(LostLeaseError):
            await jobs.release(job, f"{type(exc).__name__}: {exc}")
        raise
    return resolution


async def _resolved_elsewhere(deps: CustomerDeps, key: str) -> CustomerResolution:
    """Another worker holds (or finished) this organization's resolution.

    Resolving takes a few calls, so wait a little for the holder (often a deal of the same queue
    batch) before handing the message back to the queue with a short delay.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_FOR_HOLDER_SECONDS
    while True:
        current = await deps.state.jobs.get(JOB_KIND, key)
        account = (current.result or {}).get("account") if current is not None else None
        if current is not None and current.state == "done" and account:
            await deps.state.idmap.put("customer", key, str(account))
            return CustomerResolution(str(account), "idmap")
        if current is None or not current.lease_live() or loop.time() >= deadline:
            break
        await asyncio.sleep(0.25)  # a lease held elsewhere: poll the row, bounded by the deadline
    delay = min(5.0, lease_left(current)) if current is not None else 5.0
    raise RetryLaterError(f"customer {key} is being resolved by another worker", delay=delay)


async def _create(
    ctx: FlowContext, deps: CustomerDeps, *, deal: Deal, org: Organization | None, legal_entity: str
) -> CustomerResolution:
    cfg = deps.cfg
    if not cfg.customer.create_missing:
        name = org.name if org else f"person {deal.person_id}"
        raise MappingError(
            f"deal {deal.id}: no D365 customer matches {name!r} in {legal_entity} and customer.create_missing "
            "is off; create the customer in D365 or put its account on the organization"
        )
    person = await deps.pipedrive.get_person(deal.person_id) if deal.person_id is not None else None
    planned = plan_customer(org, person, cfg, legal_entity, currency=deal.currency or None)
    if planned.warnings:
        await ctx.audit("customer.address_left_out", level="warning", warnings=planned.warnings)
    await ctx.step("before_customer_create")
    try:
        created = await deps.d365.create_customer(planned.payload)
    except DuplicateError:
        if planned.payload.customer_account is None:
            raise
        created = await _adopt_manual_account(deps.d365, planned.payload, planned.payload.customer_account)
    await ctx.audit("customer.created", account=created.customer_account, legal_entity=legal_entity)
    await ctx.step("after_customer_create")
    return CustomerResolution(created.customer_account, "created")


async def _adopt_manual_account(d365: D365Client, payload: CustomerCreate, account: str) -> Customer:
    """A manual account (customer.account_template) that already exists: ours if it carries the same name
    (an earlier attempt whose answer was lost), else the template collides with another customer."""
    found = await d365.find_customer(account, payload.data_area_id)
    wanted = payload.organization_name or " ".join(
        p for p in (payload.person_first_name, payload.person_last_name) if p
    )
    if found is not None and normalize_name(found.display_name) == normalize_name(wanted):
        return found
    owner = repr(found.display_name) if found is not None else "another record"
    raise MappingError(
        f"customer account {account!r} (from customer.account_template) already belongs to {owner} in "
        f"{payload.data_area_id}; change customer.account_template so it cannot collide with existing accounts"
    )


async def _find(
    deps: CustomerDeps,
    *,
    deal: Deal,
    org: Organization | None,
    fields: ResolvedFields,
    legal_entity: str,
    recovering: bool,
) -> CustomerResolution | None:
    cfg = deps.cfg
    if org is None:
        return None  # person-only deals have nothing to match on: a new customer is created
    rules: list[MatchRule] = list(cfg.customer.match_rules)
    if recovering and "name_country" not in rules:
        rules.append("name_country")  # an earlier attempt may have created it: find that one first
    for rule in rules:
        if rule == "account_field":
            account = org_account(org, cfg, fields)
            if not account:
                continue
            try:
                found = await deps.d365.find_customer(account, legal_entity)
            except NotFoundError:
                found = None
            if found is None:
                raise MappingError(
                    f"organization {org.id} {org.name!r}: its D365 account {account!r} does not exist in "
                    f"{legal_entity}; correct the field {cfg.pipedrive_fields.org_customer_account!r}"
                )
            return CustomerResolution(found.customer_account, "account_field")
        country = country_for(org, cfg, legal_entity) if rule == "name_country" else None
        candidates = await deps.d365.find_customers_by_name(org.name.strip(), country, legal_entity)
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


async def _write_back(ctx: FlowContext, deps: CustomerDeps, org: Organization, account: str) -> None:
    """Store the account on the organization (a reference, not financial data) for exact matches later."""
    name = deps.cfg.pipedrive_fields.org_customer_account
    assert name is not None
    custom = await deps.org_fields.to_hashes({name: account})
    await deps.pipedrive.update_organization(org.id, OrganizationInput(custom_fields=custom))
    await ctx.audit("customer.written_back", org_id=org.id, account=account)
