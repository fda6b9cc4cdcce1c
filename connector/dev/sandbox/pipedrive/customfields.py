"""Custom field definitions and values: v2 validation, and the v1 / webhook-v2 renderings.

Values are stored in the v2 API shape (pipedrive-api.md section 7): enum -> option id, set -> list of ids,
monetary -> {value, currency}. The v1 and webhook shapes are derived from that one stored form.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .envelope import bad_request


@dataclass
class FieldDef:
    """One field definition; `code` is the 40-char hash for custom fields, the attribute name for built-ins."""

    code: str
    name: str
    field_type: str
    id: int
    custom: bool = True
    options: list[dict[str, Any]] | None = None
    order_nr: int = 0
    add_time: str = "2024-01-01T00:00:00Z"
    extra: dict[str, Any] = field(default_factory=dict)

    def option_ids(self) -> set[Any]:
        return {option["id"] for option in self.options or []}


def make_code(entity: str, name: str) -> str:
    """A stable 40-hex key like Pipedrive's generated hashes (they are random there; stable here for tests)."""
    return hashlib.sha1(f"{entity}:{name}".encode(), usedforsecurity=False).hexdigest()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_value(fdef: FieldDef, value: Any) -> Any:
    """Validate one v2 value for a custom field; returns the value to store. null clears the field."""
    where = f"custom_fields.{fdef.code}"
    if value is None:
        return None
    kind = fdef.field_type
    if kind in ("varchar", "text", "varchar_auto", "phone", "date"):
        if not isinstance(value, str):
            raise bad_request(f"{where}: must be a string")
        return value
    if kind == "double":
        if not _is_number(value):
            raise bad_request(f"{where}: must be a number")
        return value
    if kind in ("int", "user", "org", "people"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_request(f"{where}: must be an integer")
        return value
    if kind == "enum":
        if not isinstance(value, int) or isinstance(value, bool) or value not in fdef.option_ids():
            raise bad_request(f"{where}: must be one of the option ids {sorted(fdef.option_ids())}")
        return value
    if kind == "set":
        if not isinstance(value, list) or not value:
            # SPEC-v2: "sending an empty array [] is not supported and will result in a validation error"
            raise bad_request(f"{where}: must be a non-empty list of option ids")
        if any(not isinstance(v, int) or isinstance(v, bool) or v not in fdef.option_ids() for v in value):
            raise bad_request(f"{where}: must list option ids from {sorted(fdef.option_ids())}")
        return list(value)
    if kind == "monetary":
        if (
            not isinstance(value, dict)
            or set(value) - {"value", "currency"}
            or not _is_number(value.get("value"))
            or not isinstance(value.get("currency"), str)
        ):
            raise bad_request(f"{where}: must be an object {{value: number, currency: string}}")
        return {"value": value["value"], "currency": value["currency"]}
    raise bad_request(f"{where}: field type {kind} is not writable")


def check_custom_fields(defs: dict[str, FieldDef], values: Any) -> dict[str, Any]:
    """Validate a `custom_fields` object of a v2 write against the entity's definitions."""
    if not isinstance(values, dict):
        raise bad_request("custom_fields: must be an object")
    checked: dict[str, Any] = {}
    for key, value in values.items():
        fdef = defs.get(key)
        if fdef is None or not fdef.custom:
            raise bad_request(f"custom_fields.{key}: no such custom field")
        checked[key] = check_value(fdef, value)
    return checked


def with_labels(defs: dict[str, FieldDef], values: dict[str, Any]) -> dict[str, Any]:
    """`include_option_labels=true`: enum/set values become {id, label} objects (SPEC-v2 parameter)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        fdef = defs.get(key)
        labels = {o["id"]: o["label"] for o in (fdef.options or [])} if fdef else {}
        if fdef and fdef.field_type == "enum" and value is not None:
            out[key] = {"id": value, "label": labels.get(value)}
        elif fdef and fdef.field_type == "set" and value is not None:
            out[key] = [{"id": v, "label": labels.get(v)} for v in value]
        else:
            out[key] = value
    return out


def flatten_v1(defs: dict[str, FieldDef], values: dict[str, Any]) -> dict[str, Any]:
    """v1 puts custom fields on the entity root: enum "123", set "1,2", monetary value + `<hash>_currency`."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = defs[key].field_type if key in defs else "varchar"
        if value is None:
            out[key] = None
            if kind == "monetary":
                out[f"{key}_currency"] = None
        elif kind == "enum":
            out[key] = str(value)
        elif kind == "set":
            out[key] = ",".join(str(v) for v in value)
        elif kind == "monetary":
            out[key] = value["value"]
            out[f"{key}_currency"] = value["currency"]
        else:
            out[key] = value
    return out


def webhook_v2(defs: dict[str, FieldDef], values: dict[str, Any]) -> dict[str, Any]:
    """Webhooks v2 send typed objects, unlike API v2 (webhooks v2 migration guide; exactness UNCONFIRMED)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = defs[key].field_type if key in defs else "varchar"
        if value is None:
            out[key] = None
        elif kind == "enum":
            out[key] = {"id": value, "type": "enum"}
        elif kind == "set":
            out[key] = {"values": [{"id": v} for v in value], "type": "set"}
        elif kind == "monetary":
            out[key] = {"currency": value["currency"], "type": "monetary", "value": value["value"]}
        elif kind in ("user", "org", "people"):
            out[key] = {"id": value, "type": kind}
        else:
            out[key] = {"type": kind, "value": value}
    return out
