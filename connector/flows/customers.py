"""Customer match-or-create for a deal (docs/architecture.md, flow 2).

Order of evidence: id map (Pipedrive org -> account, per legal entity) -> the account stored on the
organization's configured custom field -> the configured D365 match rules -> create.

Guarantees, across scaled-out instances:
- One resolver per organization (or person) at a time: a `customer` job is claimed through the job runner,
  so two first deals of the same new organization cannot both create a D365 customer; the other waits
  briefly, then re-queues.
- The id map is written LAST (after the write-back to the organization), so an id-map hit means all
  is done and costs no Pipedrive or D365 call.
- A create is announced on the customer job first. An attempt that died after creating, or whose answer
  was lost, leaves the intent open: the next one waits for the settle time and looks the customer up
  (organizations by name and country, person-only deals by the marker written at create) before it
  creates again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from connector.d365.client import D365Client
from connector.d365.models import Customer, CustomerCreate
from connector.errors import DuplicateError, NotFoundError, UnknownOutcomeError
from connector.flows.context import FlowContext
from connector.flows.deps import CustomerDeps
from connector.flows.runner import JobHandle
from connector.mapping.customers import (
    PERSON_MARKER_FIELD,
    country_for,
    match_key,
    normalize_name,
    org_account,
    person_marker,
    plan_customer,
)
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from connector.mapping.sections import MatchRule
from connector.pipedrive.models import Deal, Organization, OrganizationInput
from connector.state.job_row import Job
from connector.state.jobs import CUSTOMER_JOB

How = Literal["idmap", "account_field", "matched", "created"]
LEASE_SECONDS = 120
WAIT_FOR_HOLDER_SECONDS = 15.0
# Loads the deal's organization and its resolved custom fields when (and only when) they are needed.
OrgLoader = Callable[[], Awaitable[tuple[Organization | None, ResolvedFields]]]


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
    ctx: FlowContext, deps: CustomerDeps, *, deal: Deal, legal_entity: str, load_org: OrgLoader
) -> CustomerResolution:
    if deal.org_id is None and deal.person_id is None:
        raise MappingError(f"deal {deal.id}: has no organization or person; link the customer in Pipedrive")
    key = idmap_key(legal_entity, deal)
    cached = await deps.state.idmap.get("customer", key)
    if cached is not None:
        return CustomerResolution(cached.target_key, "idmap")

    got = await deps.runner.wait_for(CUSTOMER_JOB, key, patience=WAIT_FOR_HOLDER_SECONDS, lease_seconds=LEASE_SECONDS)
    if isinstance(got, Job):
        return await _resolved_elsewhere(deps, key, got)
    handle = got
    try:
        org, fields = await load_org()
        intent = handle.open_intent("customer.create")
        if intent is not None:
            await handle.wait_to_settle(intent, f"customer {key}")
        resolution = await _find(deps, deal=deal, org=org, fields=fields, legal_entity=legal_entity,
                                 recovering=handle.job.attempts > 1 or intent is not None)  # fmt: skip
        if resolution is None:
            if intent is not None:
                await ctx.audit("customer.recheck_absent", key=key)
            resolution = await _create(ctx, deps, handle, deal=deal, org=org, legal_entity=legal_entity)
        else:
            if intent is not None:
                await handle.settled()
            await ctx.audit(f"customer.{resolution.how}", account=resolution.account, legal_entity=legal_entity,
                            via="re-check after a lost answer" if intent is not None else None)  # fmt: skip
        if org is not None and deps.cfg.pipedrive_fields.org_customer_account and resolution.how != "account_field":
            await _write_back(ctx, deps, org, resolution.account)
        await deps.state.idmap.put("customer", key, resolution.account)
        await handle.complete({"account": resolution.account, "how": resolution.how})
    except BaseException as exc:
        await handle.release(f"{type(exc).__name__}: {exc}")
        raise
    return resolution


async def _resolved_elsewhere(deps: CustomerDeps, key: str, job: Job) -> CustomerResolution:
    account = (job.result or {}).get("account")
    if job.state == "done" and account:
        await deps.state.idmap.put("customer", key, str(account))
        return CustomerResolution(str(account), "idmap")
    raise MappingError(f"customer {key}: its resolution is {job.state} ({job.last_error or 'no reason'})")


async def _create(
    ctx: FlowContext,
    deps: CustomerDeps,
    handle: JobHandle,
    *,
    deal: Deal,
    org: Organization | None,
    legal_entity: str,
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
    await handle.intend("customer.create", legal_entity=legal_entity)
    await ctx.step("before_customer_create")
    try:
        created = await deps.d365.create_customer(planned.payload)
    except DuplicateError:
        await handle.settled()
        if planned.payload.customer_account is None:
            raise
        created = await _adopt_manual_account(deps.d365, planned.payload, planned.payload.customer_account)
    except UnknownOutcomeError as exc:
        await ctx.audit("customer.answer_lost", level="warning", error=str(exc), settle=round(handle.lifecycle.settle))
        raise
    except BaseException:
        await handle.settled()  # refused, throttled or never sent: nothing was created
        raise
    await handle.settled(account=created.customer_account)
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
        # A person has no match key: a new customer is created, found again only by its marker.
        if not recovering or deal.person_id is None:
            return None
        marker = person_marker(deal.person_id)
        marked = await deps.d365.find_customers_by_field(PERSON_MARKER_FIELD, marker, legal_entity)
        if len(marked) > 1:
            raise MappingError(
                f"deal {deal.id}: several D365 customers carry {PERSON_MARKER_FIELD} {marker!r} "
                f"({', '.join(c.customer_account for c in marked)}); merge them in D365, then replay"
            )
        return CustomerResolution(marked[0].customer_account, "matched") if marked else None
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
