"""Configured Pipedrive custom fields, by NAME, as plain values the mapping can use.

The mapping file names fields; hash keys differ per Pipedrive account. The flow turns a record's
`custom_fields` into values keyed by name with option ids replaced by labels, using the client's
resolver (`connector.pipedrive.fields.CustomFields.to_names` / `.value`), and passes them in as
`ResolvedFields`: so this layer stays pure and never sees a hash key.
Value shapes after resolution: docs/api-facts.md, Pipedrive §7 (enum -> label, set -> list of labels,
monetary -> {"value", "currency"}, address/time ranges -> objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.mapping.config import MappingConfig
from connector.mapping.sections import DealFieldSource, OrgFieldSource


def _fold(name: str) -> str:
    """Names compare as the Pipedrive resolver compares them: case- and spacing-insensitive."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class ResolvedFields:
    """Custom field values by field NAME (labels, not option ids) for the deal and its organization."""

    deal: Mapping[str, Any] = field(default_factory=dict)
    organization: Mapping[str, Any] = field(default_factory=dict)

    def deal_value(self, name: str) -> Any:
        return _lookup(self.deal, name)

    def org_value(self, name: str) -> Any:
        return _lookup(self.organization, name)


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    if name in values:
        return values[name]
    wanted = _fold(name)
    return next((v for k, v in values.items() if _fold(k) == wanted), None)


@dataclass(frozen=True)
class ConfiguredFields:
    """Every custom field name the mapping reads or writes, per entity: resolve these at start."""

    deal: tuple[str, ...]
    organization: tuple[str, ...]


def configured_fields(cfg: MappingConfig) -> ConfiguredFields:
    """The field names the flows must resolve (and can check exist) for this mapping."""
    deal: list[str] = []
    org: list[str] = []
    if cfg.pipedrive_fields.deal_order_number:
        deal.append(cfg.pipedrive_fields.deal_order_number)
    if cfg.pipedrive_fields.org_customer_account:
        org.append(cfg.pipedrive_fields.org_customer_account)
    for src in cfg.dimensions.sources.values():
        if isinstance(src, DealFieldSource):
            deal.append(src.field)
        elif isinstance(src, OrgFieldSource):
            org.append(src.field)
    return ConfiguredFields(deal=tuple(dict.fromkeys(deal)), organization=tuple(dict.fromkeys(org)))


class FieldValueError(ValueError):
    """A custom field holds a value that is not one text value; the message says why."""


def field_text(value: Any) -> str | None:
    """One resolved custom field value as text; None when empty.

    Raises FieldValueError for several selected options or structured values (address, ranges).
    """
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        if len(value) > 1:
            raise FieldValueError(f"has several options selected ({', '.join(map(str, value))}); select one")
        return field_text(value[0])
    if isinstance(value, dict):
        if isinstance(value.get("label"), str):  # {id, label} when labels were included
            return field_text(value["label"])
        if set(value) <= {"value", "currency"} and "value" in value:  # monetary
            return field_text(value["value"])
        raise FieldValueError("holds a structured value (address, range or time); use a text or option field")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # JSON numbers: 12.0 -> "12", 12.5 -> "12.5" (repr is the shortest round-trip text, no float noise).
        number = Decimal(repr(value))
        return format(number.to_integral_value() if number == number.to_integral_value() else number, "f")
    if isinstance(value, int | Decimal):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise FieldValueError(f"holds a {type(value).__name__} value; use a text or option field")
