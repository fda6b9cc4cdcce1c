"""`ml-connector reconcile --since 30d`: every won deal of the period against D365, and every order that
carries our reference against Pipedrive. Reads only; every call goes through the clients' pacers.

Per won deal: the order is found by the deal's reference (the one frozen on its job when there is one)
and compared with what a build would plan now (`connector.preview.plan_deal`): customer, lines by line
identity, totals. Per order with our reference created in the period: its deal must be won.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from connector.errors import NotFoundError, PermanentError
from connector.flows.master_diff import legal_entities
from connector.flows.order_plan import read_deal
from connector.flows.poll import won_deals
from connector.reconcile.compare import compare_order

if TYPE_CHECKING:
    from connector.flows.deps import OrderDeps
    from connector.mapping.config import MappingConfig
    from connector.pipedrive.client import PipedriveClient
    from connector.state.job_row import Job

DealStatus = Literal["ok", "mismatch", "missing", "failed", "pending"]
MISMATCHES = ("mismatch", "missing")


class DealRow(BaseModel):
    deal_id: int
    status: DealStatus
    legal_entity: str = ""
    reference: str = ""
    order_number: str | None = None
    differences: list[str] = []


class OrphanRow(BaseModel):
    order_number: str
    legal_entity: str
    reference: str
    deal_id: int | None
    why: str


class ReconcileReport(BaseModel):
    since: datetime
    deals: list[DealRow]
    orphans: list[OrphanRow]

    @property
    def mismatches(self) -> int:
        return sum(1 for d in self.deals if d.status in MISMATCHES) + len(self.orphans)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.deals:
            counts[row.status] = counts.get(row.status, 0) + 1
        counts["orders without a won deal"] = len(self.orphans)
        return counts


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `90m` back from now, or an ISO date/time (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d{1,5})\s*([dhm])\s*", text)
    if m:
        amount, unit = int(m.group(1)), m.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a period such as 30d, 12h, 90m, or a date such as 2026-11-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def reconcile(deps: OrderDeps, since: datetime, *, stale_after: float) -> ReconcileReport:
    """`stale_after` (JOB_STALE_SECONDS): an open job younger than that is still pending, not missing."""
    won = [
        d.id
        async for d in won_deals(deps.pipedrive, since, archived=True)  # an archived won deal needs its order too
        if d.won_time is None or d.won_time >= since
    ]
    deals = [await _deal_row(deps, deal_id, stale_after) for deal_id in sorted(set(won))]
    orphans = await _orphans(deps, since, set(won))
    return ReconcileReport(since=since, deals=deals, orphans=orphans)


async def _deal_row(deps: OrderDeps, deal_id: int, stale_after: float) -> DealRow:
    from connector.preview import NEW_ACCOUNT, plan_deal
    from connector.state.jobs import ORDER_JOB

    cfg = deps.cfg
    job = await deps.state.jobs.get(ORDER_JOB, str(deal_id))
    facts = await read_deal(deps, deal_id)
    frozen = (job.result or {}) if job is not None else {}
    legal_entity = str(frozen.get("legal_entity") or facts.legal_entity)
    reference = str(frozen.get("reference") or facts.reference)
    row = DealRow(deal_id=deal_id, status="ok", legal_entity=legal_entity, reference=reference)
    order = await deps.d365.find_order_by_reference(reference, legal_entity, field=cfg.order.reference_field)
    if order is None:
        row.status, row.differences = _no_order(job, stale_after)
        return row
    row.order_number = order.sales_order_number
    try:
        plan, _, choice = await plan_deal(deps, facts)
    except PermanentError as exc:
        row.status, row.differences = "mismatch", [f"the deal cannot be planned now: {exc}"]
        return row
    built_for = frozen.get("customer")
    if choice.account in (None, NEW_ACCOUNT) and built_for:
        plan = plan.model_copy(
            update={"header": plan.header.model_copy(update={"ordering_customer_account_number": str(built_for)})}
        )
    row.differences = compare_order(plan, order, cfg)
    row.status = "mismatch" if row.differences else "ok"
    return row


def _no_order(job: Job | None, stale_after: float) -> tuple[DealStatus, list[str]]:
    if job is None:
        return "missing", ["no order and no job: the deal was never queued (replay it)"]
    if job.state == "failed":
        return "failed", [job.last_error or "failed"]
    if job.state in ("queued", "running"):
        updated = job.updated or job.created
        age = (datetime.now(UTC) - updated).total_seconds() if updated is not None else float("inf")
        if age < stale_after:
            return "pending", [f"job is {job.state}"]
        return "missing", [f"job has been {job.state} since {updated}: replay the deal"]
    return "missing", [f"job is {job.state} but D365 has no order with its reference: replay the deal"]


def reference_pattern(cfg: MappingConfig) -> tuple[str, re.Pattern[str]]:
    """(the text before the first placeholder, a regex that reads the deal id back from a reference)."""
    parts: list[str] = []
    prefix: str | None = None
    for literal, name, _, _ in string.Formatter().parse(cfg.order.reference_template):
        prefix = literal if prefix is None else prefix
        parts.append(re.escape(literal))
        if name == "deal_id":
            parts.append(r"(?P=deal_id)" if "(?P<deal_id>" in "".join(parts) else r"(?P<deal_id>\d+)")
        elif name is not None:
            parts.append(r"\d+")  # the other placeholders are ids too (pipeline, organization, owner)
    return prefix or "", re.compile("".join(parts), re.IGNORECASE)


async def _orphans(deps: OrderDeps, since: datetime, won: set[int]) -> list[OrphanRow]:
    cfg, d365, pipedrive = deps.cfg, deps.d365, deps.pipedrive
    field = cfg.order.reference_field
    prefix, pattern = reference_pattern(cfg)
    clauses = [f"OrderCreationDateTime ge {since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"]
    if prefix:
        clauses.insert(0, f"{field} eq '{prefix.replace(chr(39), chr(39) * 2)}*'")  # F&O wildcard
    found: list[OrphanRow] = []
    for le in legal_entities(cfg):
        rows = d365.iter_entities(
            "SalesOrderHeadersV2",
            filter=" and ".join(clauses),
            select=["dataAreaId", "SalesOrderNumber", field],
            orderby=["SalesOrderNumber asc"],
            legal_entity=le,
        )
        async for row in rows:
            reference = str(row.get(field, ""))
            m = pattern.fullmatch(reference)
            if m is None:
                continue  # not a reference the connector makes
            deal_id = int(m.group("deal_id"))
            if deal_id in won:
                continue
            why = await _not_won(pipedrive, deal_id, since)
            if why:
                found.append(OrphanRow(order_number=str(row["SalesOrderNumber"]), legal_entity=le,
                                       reference=reference, deal_id=deal_id, why=why))  # fmt: skip
    return found


async def _not_won(pipedrive: PipedriveClient, deal_id: int, since: datetime) -> str | None:
    """Why the order's deal does not justify it, or None when it was won (before the period)."""
    try:
        deal = await pipedrive.get_deal(deal_id)
    except NotFoundError:
        return f"deal {deal_id} does not exist in Pipedrive"
    if deal.is_deleted:
        return f"deal {deal_id} is deleted"
    if deal.status != "won":
        return f"deal {deal_id} is {deal.status}, not won"
    return None
