"""The verdict, read from the systems themselves: D365 over OData (cross-company, through a real token),
Pipedrive's deals, the job rows, and every worker's log.

Every won deal must have exactly one sales order with exactly its lines, or a failed job with a reason;
no customer may exist twice; no secret may appear in any process's log.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from azure.identity.aio import ClientSecretCredential

from connector.dev.chaos.seed import ChaosDeal
from connector.dev.sandbox.stack import LocalStack

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@dataclass
class Verdict:
    won: int = 0
    orders: int = 0
    duplicates: list[int] = field(default_factory=list)  # deals with more than one order
    lost: list[int] = field(default_factory=list)  # won, no order, no failed job with a reason
    wrong_lines: list[int] = field(default_factory=list)  # one order, but not exactly the deal's lines
    failed: dict[str, list[int]] = field(default_factory=dict)  # reason (shortened) -> deals
    failed_with_order: list[int] = field(default_factory=list)  # a failed job although its order exists
    duplicate_customers: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.wrong_lines or self.duplicate_customers or self.leaks)


async def odata_rows(stack: LocalStack, entity_set: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of an entity set in every company, as any OData client reads it (token via azure-identity)."""
    sim = stack.d365
    credential = ClientSecretCredential(sim.tenant_id, sim.client_id, sim.client_secret, authority=sim.authority,
                                        disable_instance_discovery=True, connection_verify=sim.ca_cert_path)  # fmt: skip
    async with credential:
        token = (await credential.get_token(sim.scope)).token
    rows: list[dict[str, Any]] = []
    url: str | None = f"{sim.data_url}/{entity_set}"
    query: dict[str, str] | None = {"cross-company": "true", **params}
    async with httpx.AsyncClient(verify=sim.ssl_context(), headers={"Authorization": f"Bearer {token}"}) as http:
        while url:
            answer = await http.get(url, params=query, timeout=60)
            answer.raise_for_status()
            body = answer.json()
            rows += body["value"]
            url, query = body.get("@odata.nextLink"), None
    return rows


def _short(reason: str) -> str:
    """A failure reason without its particulars (operation lists, numbers), to count alike ones together."""
    text = re.sub(r"\([^()]*\)", "", reason.split(";")[0])
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", text)).strip()[:80]


def _lines(order: dict[str, Any]) -> Counter[tuple[str, float]]:
    return Counter((str(ln["ItemNumber"]), float(ln["OrderedSalesQuantity"])) for ln in order["SalesOrderLines"])


async def judge(
    stack: LocalStack, deals: list[ChaosDeal], jobs: dict[int, Any], reference_template: str, logs: str,
    secrets: list[str],
) -> Verdict:  # fmt: skip
    verdict = Verdict()
    won = [d for d in deals if stack.pipedrive.deal(d.deal_id)["status"] == "won"]
    verdict.won = len(won)
    headers = await odata_rows(stack, "SalesOrderHeadersV2", {"$expand": "SalesOrderLines"})
    by_reference: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for header in headers:
        by_reference[str(header.get("CustomersOrderReference") or header.get("CustomerRequisitionNumber"))].append(
            header
        )
    for deal in won:
        orders = by_reference.get(reference_template.format(deal_id=deal.deal_id), [])
        job = jobs.get(deal.deal_id)
        verdict.orders += min(len(orders), 1)
        if len(orders) > 1:
            verdict.duplicates.append(deal.deal_id)
        elif orders and (orders[0]["dataAreaId"] != deal.company or _lines(orders[0]) != Counter(deal.lines)):
            verdict.wrong_lines.append(deal.deal_id)
        if job is not None and job.state == "failed" and job.last_error:
            if orders:
                verdict.failed_with_order.append(deal.deal_id)
            else:
                verdict.failed.setdefault(_short(job.last_error), []).append(deal.deal_id)
        elif not orders:
            verdict.lost.append(deal.deal_id)
    customers = await odata_rows(stack, "CustomersV3", {"$select": "dataAreaId,CustomerAccount,OrganizationName,"
                                                        "PersonFirstName,PersonLastName,PartyType"})  # fmt: skip
    names = Counter(
        (c["dataAreaId"], " ".join(str(c[f] or "") for f in ("OrganizationName", "PersonFirstName", "PersonLastName")).strip().casefold())
        for c in customers
    )  # fmt: skip
    verdict.duplicate_customers = sorted(f"{company}:{name}" for (company, name), n in names.items() if n > 1)
    verdict.leaks = leaks(logs, secrets)
    return verdict


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which secrets (by position in `secrets`) or bearer tokens appear in `text`; never the values."""
    found = [f"secret #{i} ({len(s)} chars)" for i, s in enumerate(secrets) if s and s in text]
    if JWT.search(text):
        found.append(f"{len(JWT.findall(text))} JWT access token(s)")
    return found
