"""Record builders: the v2 shape of each entity with Pipedrive's defaults, and the derived values.

Kept pure (no store access) so the shapes are easy to compare with SPEC-v2 examples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .customfields import FieldDef

DEFAULT_USER: dict[str, Any] = {
    "id": 1,
    "name": "Sandbox Admin",
    "email": "admin@sandbox.invalid",
    "company_id": 7001,
    "company_name": "Sandbox Distribution Ltd",
    "company_domain": "sandbox-distribution",
    "default_currency": "EUR",
    "locale": "en_US",
    "timezone_name": "Europe/Helsinki",
}

# Built-in fields listed by the field endpoints (a representative subset; v2 option ids are strings).
_BUILTIN: dict[str, list[tuple[str, str, str]]] = {
    "deal": [
        ("id", "ID", "int"),
        ("title", "Title", "varchar"),
        ("value", "Value", "monetary"),
        ("currency", "Currency", "varchar_options"),
        ("org_id", "Organization", "org"),
        ("person_id", "Contact person", "people"),
        ("owner_id", "Owner", "user"),
        ("stage_id", "Stage", "stage"),
        ("status", "Status", "status"),
        ("won_time", "Won time", "date"),
        ("expected_close_date", "Expected close date", "date"),
        ("update_time", "Update time", "date"),
    ],
    "organization": [
        ("id", "ID", "int"),
        ("name", "Name", "varchar"),
        ("owner_id", "Owner", "user"),
        ("address", "Address", "address"),
        ("update_time", "Update time", "date"),
    ],
    "person": [
        ("id", "ID", "int"),
        ("name", "Name", "varchar"),
        ("org_id", "Organization", "org"),
        ("emails", "Email", "varchar"),
        ("phones", "Phone", "phone"),
        ("update_time", "Update time", "date"),
    ],
    "product": [
        ("id", "ID", "int"),
        ("name", "Name", "varchar"),
        ("code", "Product code", "varchar"),
        ("unit", "Unit", "varchar"),
        ("prices", "Price", "price_list"),
        ("tax", "Tax", "double"),
        ("category", "Category", "enum"),
    ],
}
_STATUS_OPTIONS = [
    {"id": "open", "label": "Open"},
    {"id": "won", "label": "Won"},
    {"id": "lost", "label": "Lost"},
    {"id": "deleted", "label": "Deleted"},
]


def builtin_fields(entity: str) -> dict[str, FieldDef]:
    out: dict[str, FieldDef] = {}
    for order, (code, name, kind) in enumerate(_BUILTIN[entity]):
        options = _STATUS_OPTIONS if kind == "status" else None
        out[code] = FieldDef(
            code=code, name=name, field_type=kind, id=1000 + order, custom=False, options=options, order_nr=order
        )
    return out


def _base(record_id: int, now: str, owner: int, custom: dict[str, Any]) -> dict[str, Any]:
    return {"id": record_id, "owner_id": owner, "add_time": now, "update_time": now, "is_deleted": False,
            "visible_to": 3, "custom_fields": custom}  # fmt: skip


def new_record(
    entity: str, record_id: int, body: dict[str, Any], custom: dict[str, Any], now: str, user_id: int,
    user: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """A full v2 record from checked write values; fields not given get Pipedrive's defaults."""
    owner = body.get("owner_id") or user_id
    if entity == "deal":
        record = {
            **_base(record_id, now, owner, custom), "title": body["title"], "creator_user_id": user_id,
            "person_id": None, "org_id": None, "pipeline_id": 1, "stage_id": 1, "value": 0,
            "currency": user.get("default_currency", "EUR"), "stage_change_time": None, "is_archived": False,
            "archive_time": None, "status": "open", "probability": None, "lost_reason": None, "close_time": None,
            "won_time": None, "lost_time": None, "local_won_date": None, "local_lost_date": None,
            "local_close_date": None, "expected_close_date": None, "label_ids": [], "origin": "API",
            "origin_id": None, "channel": None, "channel_id": None, "acv": None, "arr": None, "mrr": None,
        }  # fmt: skip
        record.update({k: v for k, v in body.items() if k not in ("add_time", "update_time")})
        record["add_time"] = body.get("add_time") or now
        record["update_time"] = body.get("update_time") or now
        record.update(deal_status_effects({"status": "open"}, {"status": record["status"]}, parse_iso(now)))
        if body.get("won_time"):
            record["won_time"] = record["close_time"] = body["won_time"]
            record["local_won_date"] = record["local_close_date"] = body["won_time"][:10]
        return record
    if entity == "organization":
        record = {**_base(record_id, now, owner, custom), "name": body["name"], "address": None, "label_ids": [],
                  "website": None, "linkedin": None, "industry": None, "annual_revenue": None,
                  "employee_count": None}  # fmt: skip
    elif entity == "person":
        record = {**_base(record_id, now, owner, custom), "name": body["name"], "first_name": None,
                  "last_name": None, "org_id": None, "emails": [], "phones": [], "label_ids": [],
                  "picture_id": None}  # fmt: skip
        first, _, last = body["name"].partition(" ")
        record["first_name"], record["last_name"] = first, last or None
    elif entity == "product":
        record = {**_base(record_id, now, owner, custom), "name": body["name"], "code": None, "description": None,
                  "unit": "", "tax": 0, "category": None, "is_linkable": True, "billing_frequency": "one-time",
                  "billing_frequency_cycles": None,
                  "prices": [{"price": 0, "currency": user.get("default_currency", "EUR"), "cost": 0,
                              "direct_cost": 0, "notes": ""}]}  # fmt: skip
    else:
        raise ValueError(entity)
    record.update(body)
    if entity == "product":
        record["prices"] = [{"product_id": record_id, **price} for price in record["prices"]]
    return record


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def deal_status_effects(record: dict[str, Any], values: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """Moving a deal to won/lost stamps won_time/lost_time and close_time, as the service does."""
    status = values.get("status")
    if status is None or status == record.get("status"):
        return values
    now = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = dict(values)
    cleared = {"won_time": None, "lost_time": None, "close_time": None, "local_won_date": None,
               "local_lost_date": None, "local_close_date": None}  # fmt: skip
    if status == "won":
        won = values.get("won_time") or now
        out = {**cleared, **out, "won_time": won, "close_time": values.get("close_time") or won,
               "local_won_date": won[:10], "local_close_date": won[:10]}  # fmt: skip
    elif status == "lost":
        lost = values.get("lost_time") or now
        out = {**cleared, **out, "lost_time": lost, "close_time": values.get("close_time") or lost,
               "local_lost_date": lost[:10], "local_close_date": lost[:10]}  # fmt: skip
    else:
        out = {**cleared, "lost_reason": None, **out}
    return out


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`previous` of a change webhook: only changed fields, custom fields only the changed keys."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        if key in ("update_time", "custom_fields"):
            continue
        if before.get(key) != value:
            out[key] = before.get(key)
    old_cf, new_cf = before.get("custom_fields") or {}, after.get("custom_fields") or {}
    cf = {k: old_cf.get(k) for k in new_cf if old_cf.get(k) != new_cf[k]}
    if cf:
        out["custom_fields"] = cf
    return out


def deal_product_sum(values: dict[str, Any]) -> float:
    """price x quantity minus discount, plus tax when exclusive (Pipedrive's exact math is UNCONFIRMED)."""
    gross = values["item_price"] * values["quantity"]
    discount = values.get("discount", 0) or 0
    net = gross - (gross * discount / 100 if values.get("discount_type", "percentage") == "percentage" else discount)
    if values.get("tax_method") == "exclusive":
        net *= 1 + (values.get("tax", 0) or 0) / 100
    return round(net, 2)


def new_deal_product(
    attachment_id: int, deal: dict[str, Any], product: dict[str, Any], values: dict[str, Any], now: str, position: int
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": attachment_id, "sum": 0, "tax": 0, "deal_id": deal["id"], "name": product["name"],
        "product_id": product["id"], "product_variation_id": None, "order_nr": position + 1, "add_time": now,
        "update_time": now, "comments": "", "currency": deal["currency"], "discount": 0,
        "quantity": values["quantity"], "item_price": values["item_price"], "tax_method": "inclusive",
        "discount_type": "percentage", "is_enabled": True, "billing_frequency": "one-time",
        "billing_frequency_cycles": None, "billing_start_date": None,
    }  # fmt: skip
    line.update({k: v for k, v in values.items() if v is not None})
    line["sum"] = deal_product_sum(line)
    return line
