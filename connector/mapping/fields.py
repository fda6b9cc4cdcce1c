"""Reading configured Pipedrive custom fields by NAME from a record's `custom_fields` (v2 shapes).

The mapping file names fields; the Pipedrive client's resolver fetches the field definitions
(name -> 40-character key + options). `ResolvedFields` carries them in, so this stays pure.
Value shapes: reference/pipedrive-api.md §7 "How values appear on entities".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.pipedrive.models import FieldDefinition

# Types whose value is one plain scalar we can use as text.
_SCALAR_TYPES = {"varchar", "varchar_auto", "text", "phone", "double", "int", "date", "user", "org", "people"}
_OPTION_TYPES = {"enum", "varchar_options"}


@dataclass(frozen=True)
class ResolvedFields:
    """Field definitions by field NAME, per entity (deal and organization fields are separate lists)."""

    deal: Mapping[str, FieldDefinition] = field(default_factory=dict)
    organization: Mapping[str, FieldDefinition] = field(default_factory=dict)

    @classmethod
    def from_definitions(
        cls, deal: list[FieldDefinition] | None = None, organization: list[FieldDefinition] | None = None
    ) -> ResolvedFields:
        return cls(
            deal={d.name: d for d in deal or []},
            organization={d.name: d for d in organization or []},
        )


class FieldValueError(ValueError):
    """A custom field holds a value we cannot turn into one text value; the message says why."""


def field_text(custom_fields: Mapping[str, Any], definition: FieldDefinition) -> str | None:
    """The field's value as text (an option's LABEL for enum fields); None when empty.

    Raises FieldValueError for values that are not one text value (several options, an address, an
    option id the field does not define).
    """
    raw = custom_fields.get(definition.code)
    if raw is None or raw == "" or raw == []:
        return None
    kind = definition.field_type
    if kind in _OPTION_TYPES or (kind == "set" and _single(raw)):
        return _option_label(raw[0] if isinstance(raw, list) else raw, definition)
    if kind == "set":
        raise FieldValueError(f"has several options selected ({_labels(raw, definition)}); select one")
    if isinstance(raw, dict):
        # monetary {"value", "currency"}, time/daterange {"value", ...}: one scalar is meaningful only
        # for monetary amounts; anything else (address, ranges) is not a single value.
        if kind == "monetary" and "value" in raw:
            return _scalar_text(raw["value"])
        raise FieldValueError(f"is a {kind} field; use a text, number or single-option field")
    if kind in _SCALAR_TYPES or isinstance(raw, str | int | float):
        return _scalar_text(raw)
    raise FieldValueError(f"is a {kind} field; use a text, number or single-option field")


def _single(raw: Any) -> bool:
    return isinstance(raw, list) and len(raw) == 1


def _option_label(raw: Any, definition: FieldDefinition) -> str:
    # With include_option_labels=true Pipedrive sends {"id", "label"}; v1 sends the id as a string.
    if isinstance(raw, dict):
        if raw.get("label"):
            return str(raw["label"])
        raw = raw.get("id")
    for option in definition.options:
        if str(option.id) == str(raw):
            return option.label
    raise FieldValueError(f"holds option id {raw!r}, which the field does not define (deleted option?)")


def _labels(raw: list[Any], definition: FieldDefinition) -> str:
    out = []
    for item in raw:
        try:
            out.append(_option_label(item, definition))
        except FieldValueError:
            out.append(str(item))
    return ", ".join(out)


def _scalar_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # JSON numbers: 12.0 -> "12", 12.5 -> "12.5" (no float noise: repr is the shortest round trip).
        number = Decimal(repr(value))
        return format(number.to_integral_value() if number == number.to_integral_value() else number, "f")
    return str(value).strip() or None
