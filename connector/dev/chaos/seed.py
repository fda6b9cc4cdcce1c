"""The chaos data set: the demo data plus N open deals (seeded draw), and the mapping for a numbering mode.

Deals spread over organizations D365 already knows (by account field and by name), organizations it
lacks (several deals each, so workers race to create the same customer), person-only deals, and the
second company (DACH pipeline -> demf). Lines have no discounts, so "exactly its lines" is a plain
comparison of item numbers and quantities.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connector.dev.chaos.config import ChaosConfig, Numbering
from connector.dev.sandbox.demo_data import PRODUCTS, _deal, _org, _person, d365_seed, pipedrive_seed
from connector.dev.sandbox.stack import DEMO_MAPPING

FIRST_DEAL = 50_000
FIRST_ORG = 5_000
FIRST_PERSON = 5_000
KNOWN_ORGS = {1: "US", 2: "US", 3: "DE"}  # demo organizations D365 already has (account field / name match)


@dataclass(frozen=True)
class ChaosDeal:
    deal_id: int
    company: str  # expected dataAreaId
    lines: tuple[tuple[str, float], ...]  # (ItemNumber, quantity), in deal order
    customer: str  # who the customer is: "org:<id>" or "person:<id>"


@dataclass
class ChaosData:
    pipedrive: dict[str, Any]
    d365: dict[str, Any]
    deals: list[ChaosDeal]
    customer_names: dict[str, str]  # "org:<id>"/"person:<id>" -> the name D365 gets


def chaos_data(config: ChaosConfig) -> ChaosData:
    rnd = random.Random(config.seed)
    pd_seed, d_seed = pipedrive_seed(), d365_seed()
    n_new = max(2, config.deals // 6)
    new_orgs: list[tuple[int, str]] = []
    names: dict[str, str] = {}
    for i in range(n_new):
        new_id = FIRST_ORG + i
        german = rnd.random() < config.second_company_share
        name = f"Chaos {'Anlagen' if german else 'Fluid'} {i:04d}"
        country, city = ("Germany", "Hamburg") if german else ("United States", "Austin")
        pd_seed["organizations"].append(_org(new_id, name, country, city))
        pd_seed["persons"].append(_person(FIRST_PERSON + i, f"Buyer {i:04d}", new_id, f"b{i}@chaos.example", "+1 5"))
        new_orgs.append((new_id, "DE" if german else "US"))
        names[f"org:{new_id}"] = name
    n_people = max(1, config.deals // 20)
    people = []
    for i in range(n_people):
        person_id = FIRST_PERSON + n_new + i
        person = _person(person_id, f"Solo Trader{i:04d} Kade", 0, f"s{i}@chaos.example", "+1 6")
        person.pop("org_id")
        pd_seed["persons"].append(person)
        people.append(person_id)
        names[f"person:{person_id}"] = f"Solo Trader{i:04d} Kade"
    deals: list[ChaosDeal] = []
    org_id: int | None
    for n in range(config.deals):
        deal_id = FIRST_DEAL + n
        draw = rnd.random()
        if draw < config.person_only_share:
            org_id, person_id, region = None, rnd.choice(people), "US"
            customer = f"person:{person_id}"
        elif draw < config.person_only_share + config.new_customer_share:
            org_id, region = rnd.choice(new_orgs)
            person_id, customer = FIRST_PERSON + (org_id - FIRST_ORG), f"org:{org_id}"
        else:
            org_id = rnd.choice(list(KNOWN_ORGS))
            person_id, region, customer = org_id, KNOWN_ORGS[org_id], f"org:{org_id}"
        german = region == "DE"
        picks = rnd.sample(range(1, len(PRODUCTS) + 1), rnd.randint(1, 5))
        lines: list[tuple[int, float, float, str | None]] = [
            (pid, float(rnd.randint(1, 9)), 0.0, None) for pid in picks
        ]
        deal = _deal(deal_id, f"Chaos deal {deal_id}", org_id or 0, person_id, 2 if german else 1,
                     "EUR" if german else "USD", rnd.choice(["North", "South", "Export"]), lines)  # fmt: skip
        if org_id is None:
            deal.pop("org_id")
        pd_seed["deals"].append(deal)
        expected = tuple((PRODUCTS[pid - 1][0], qty) for pid, qty, _, _ in lines)
        deals.append(ChaosDeal(deal_id, "demf" if german else "usmf", expected, customer))
    return ChaosData(pd_seed, d_seed, deals, names)


def write_mapping(numbering: Numbering, folder: Path) -> Path:
    """The demo mapping in the given numbering mode (`order.numbering` when this version knows it)."""
    from connector.mapping.sections import OrderConfig

    data = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
    order = data["order"]
    if numbering == "from_deal":
        order["number_template"] = order.get("number_template") or "PD{deal_id}"
    else:
        order.pop("number_template", None)
    if "numbering" in OrderConfig.model_fields:
        order["numbering"] = numbering
    path = folder / f"chaos-mapping-{numbering}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
