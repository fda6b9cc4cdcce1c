"""Validation of v2 write bodies (POST/PATCH): known keys only, strict types, as v2 documents.

v2 rejects unknown parameters (incl. custom-field hashes at top level, client-nodejs#651) and no longer
coerces strings to numbers or booleans (migration guide), so neither do we.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .envelope import bad_request

Check = Callable[[str, Any], Any]


def _num(name: str, v: Any) -> Any:
    if v is not None and (not isinstance(v, int | float) or isinstance(v, bool)):
        raise bad_request(f"{name}: must be a number")
    return v


def _int(name: str, v: Any) -> Any:
    if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
        raise bad_request(f"{name}: must be an integer")
    return v


def _str(name: str, v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise bad_request(f"{name}: must be a string")
    return v


def _bool(name: str, v: Any) -> Any:
    if not isinstance(v, bool):
        raise bad_request(f"{name}: must be true or false")
    return v


def _int_list(name: str, v: Any) -> Any:
    if not isinstance(v, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in v):
        raise bad_request(f"{name}: must be a list of integers")
    return v


def _choice(*choices: Any) -> Check:
    def check(name: str, v: Any) -> Any:
        if v not in choices:
            raise bad_request(f"{name}: must be one of {', '.join(map(str, choices))}")
        return v

    return check


def _visible_to(name: str, v: Any) -> Any:
    return _choice(1, 3, 5, 7)(name, v)


def _required_str(name: str, v: Any) -> Any:
    if not isinstance(v, str) or not v.strip():
        raise bad_request(f"{name}: must be a non-empty string")
    return v


def _prices(name: str, v: Any) -> Any:
    if not isinstance(v, list):
        raise bad_request(f"{name}: must be a list of price objects")
    seen: set[str] = set()
    out = []
    for i, price in enumerate(v):
        where = f"{name}[{i}]"
        if not isinstance(price, dict):
            raise bad_request(f"{where}: must be an object")
        unknown = set(price) - {"currency", "price", "cost", "direct_cost", "notes"}
        if unknown:
            raise bad_request(f"{where}: parameter '{sorted(unknown)[0]}' is not allowed")
        currency = _required_str(f"{where}.currency", price.get("currency"))
        if currency in seen:
            raise bad_request(f"{where}: only one price per currency is allowed")
        seen.add(currency)
        if "price" not in price:
            raise bad_request(f"{where}.price: is required")
        out.append(
            {
                "price": _num(f"{where}.price", price["price"]),
                "currency": currency,
                "cost": _num(f"{where}.cost", price.get("cost", 0)),
                "direct_cost": _num(f"{where}.direct_cost", price.get("direct_cost", 0)),
                "notes": _str(f"{where}.notes", price.get("notes", "")) or "",
            }
        )
    return out


def _address(name: str, v: Any) -> Any:
    if v is None:
        return None
    if not isinstance(v, dict) or not isinstance(v.get("value"), str):
        raise bad_request(f"{name}: must be an object with at least a string 'value'")
    return v


def _contacts(name: str, v: Any) -> Any:
    if not isinstance(v, list):
        raise bad_request(f"{name}: must be a list")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise bad_request(f"{name}[{i}]: must be an object with a string 'value'")
        out.append(
            {"value": item["value"], "primary": bool(item.get("primary", False)), "label": item.get("label", "work")}
        )
    if out and not any(c["primary"] for c in out):
        out[0]["primary"] = True
    return out


DEAL: dict[str, Check] = {
    "title": _required_str,
    "owner_id": _int,
    "person_id": _int,
    "org_id": _int,
    "pipeline_id": _int,
    "stage_id": _int,
    "value": _num,
    "currency": _str,
    "status": _choice("open", "won", "lost"),
    "probability": _num,
    "lost_reason": _str,
    "visible_to": _visible_to,
    "close_time": _str,
    "won_time": _str,
    "lost_time": _str,
    "expected_close_date": _str,
    "label_ids": _int_list,
    "is_archived": _bool,
    "archive_time": _str,
}
ORGANIZATION: dict[str, Check] = {
    "name": _required_str,
    "owner_id": _int,
    "visible_to": _visible_to,
    "label_ids": _int_list,
    "address": _address,
    "website": _str,
    "industry": _int,
}
PERSON: dict[str, Check] = {
    "name": _required_str,
    "owner_id": _int,
    "org_id": _int,
    "emails": _contacts,
    "phones": _contacts,
    "visible_to": _visible_to,
    "label_ids": _int_list,
}
PRODUCT: dict[str, Check] = {
    "name": _required_str,
    "code": _str,
    "description": _str,
    "unit": _str,
    "tax": _num,
    "category": _str,
    "owner_id": _int,
    "is_linkable": _bool,
    "visible_to": _visible_to,
    "prices": _prices,
    "billing_frequency": _choice("one-time", "annually", "semi-annually", "quarterly", "monthly", "weekly"),
    "billing_frequency_cycles": _int,
}
DEAL_PRODUCT: dict[str, Check] = {
    "product_id": _int,
    "item_price": _num,
    "quantity": _num,
    "discount": _num,
    "discount_type": _choice("percentage", "amount"),
    "tax": _num,
    "tax_method": _choice("exclusive", "inclusive", "none"),
    "comments": _str,
    "is_enabled": _bool,
    "product_variation_id": _int,
}
SCHEMAS = {
    "deal": DEAL,
    "organization": ORGANIZATION,
    "person": PERSON,
    "product": PRODUCT,
    "deal_product": DEAL_PRODUCT,
}
REQUIRED = {
    "deal": ("title",),
    "organization": ("name",),
    "person": ("name",),
    "product": ("name",),
    "deal_product": ("product_id", "item_price", "quantity"),
}


def check_body(entity: str, body: Any, *, create: bool) -> dict[str, Any]:
    """Checked values of a write body (custom_fields left for the field definitions to check)."""
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    schema = SCHEMAS[entity]
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "custom_fields" and entity != "deal_product":
            out[key] = value
            continue
        check = schema.get(key)
        if check is None:
            raise bad_request(f"{key}: Parameter '{key}' is not allowed for this request")
        out[key] = check(key, value)
    if create:
        for key in REQUIRED[entity]:
            if key not in out:
                raise bad_request(f"{key}: is required")
    return out
