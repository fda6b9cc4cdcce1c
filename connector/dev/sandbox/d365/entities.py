"""Records as F&O shapes them: every property present, typed defaults, keys, weak ETags (pure functions)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from connector.dev.sandbox.d365.metadata import NAMESPACE, EntitySet, Prop, Schema
from connector.dev.sandbox.d365.odata_errors import ODataError, bad_request

EMPTY_DATE = "1900-01-01T12:00:00Z"
EMPTY_DATETIME = "1900-01-01T00:00:00Z"
_DATETIME_NAME = re.compile(r"DateTime|ValidFrom|ValidTo|Timestamp", re.I)


def is_datetime_field(name: str) -> bool:
    """Date-only fields serialize as YYYY-MM-DDT12:00:00Z, date-times keep their time (reference section 9).

    The metadata types both as Edm.DateTimeOffset, so the split goes by name (heuristic, UNCONFIRMED).
    """
    return bool(_DATETIME_NAME.search(name))


class UnknownFieldError(LookupError):
    """Simulator code named a field its entity type does not have: a bug in the simulator, never data."""


class Record(dict[str, Any]):
    """A row that refuses field names its entity type lacks, so a typo in the rules fails loudly.

    Names starting with "_" are the simulator's own bookkeeping (RecId, RecVersion).
    """

    def __init__(self, allowed: frozenset[str], data: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.allowed = allowed
        if data:
            self.update(data)

    def _check(self, key: str) -> None:
        if not key.startswith("_") and key not in self.allowed:
            raise UnknownFieldError(f"'{key}' is not a property of this entity type")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key)
        super().__setitem__(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return super().setdefault(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        self._check(key)
        return super().pop(key, *default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def record_for(entity: EntitySet, data: dict[str, Any] | None = None) -> Record:
    return Record(frozenset(entity.properties), data)


def default_value(name: str, prop: Prop, schema: Schema) -> Any:
    if prop.is_enum:
        members = schema.enum_members(prop.type)
        return None if prop.nullable or not members else members[0]
    if prop.type == "Edm.String":
        return ""
    if prop.type in ("Edm.Decimal", "Edm.Int32", "Edm.Int64"):
        return 0
    if prop.type == "Edm.DateTimeOffset":
        return EMPTY_DATETIME if is_datetime_field(name) else EMPTY_DATE
    if prop.type == "Edm.Guid":
        return "00000000-0000-0000-0000-000000000000"
    return None


def blank_record(entity: EntitySet, schema: Schema) -> Record:
    record = record_for(entity, {name: default_value(name, prop, schema) for name, prop in entity.properties.items()})
    record.update(entity.recorded_defaults)
    return record


def format_date(value: datetime, name: str) -> str:
    value = value.astimezone(UTC)
    if is_datetime_field(name):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.strftime("%Y-%m-%dT12:00:00Z")


def coerce_body(entity: EntitySet, schema: Schema, body: object) -> Record:
    """Validate a POST/PATCH body against the entity type; unknown properties and bad types are 400s."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    out = record_for(entity)
    for name, value in body.items():
        if name == "@odata.type":
            expected = f"#{NAMESPACE}.{entity.entity_type}"
            if value != expected:
                raise bad_request(f"The type '{value}' is not compatible with the entity set '{entity.name}'.")
            continue
        if name.startswith("@") or "@odata." in name:
            continue
        prop = entity.properties.get(name)
        if prop is None:
            raise bad_request(
                f"The property '{name}' does not exist on type '{NAMESPACE}.{entity.entity_type}'. "
                "Make sure to only use property names that are defined by the type."
            )
        out[name] = coerce_value(name, prop, schema, value)
    return out


def coerce_value(name: str, prop: Prop, schema: Schema, value: Any) -> Any:
    def fail() -> ODataError:
        expected = f"{NAMESPACE}.{prop.type}" if prop.is_enum else prop.type
        return bad_request(f"Cannot convert the literal '{value}' to the expected type '{expected}'.")

    if value is None:
        if not prop.nullable:
            raise bad_request(f"A null value was found for the property named '{name}', which has the expected "
                              f"type '{prop.type}[Nullable=False]'.")  # fmt: skip
        return None
    if prop.is_enum:
        if not isinstance(value, str) or value not in schema.enum_members(prop.type):
            raise fail()
        return value
    if prop.type in ("Edm.String", "Edm.Guid"):
        if not isinstance(value, str):
            raise fail()
        return value
    if prop.type == "Edm.Decimal":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise fail()
        try:
            number = Decimal(str(value))
        except ArithmeticError as exc:
            raise fail() from exc
        if not number.is_finite():
            raise fail()
        return int(number) if number == number.to_integral_value() else float(number)
    if prop.type in ("Edm.Int32", "Edm.Int64"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if prop.type == "Edm.DateTimeOffset":
        if not isinstance(value, str):
            raise fail()
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise fail() from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return format_date(parsed, name)
    return value


def key_values(entity: EntitySet, record: dict[str, Any]) -> tuple[str, ...]:
    """The record's identity, case-insensitive like SQL Server's collation."""
    return tuple(str(record.get(k, "")).casefold() for k in entity.key)


def format_key(entity: EntitySet, record: dict[str, Any]) -> str:
    parts = []
    for k in entity.key:
        value = str(record.get(k, "")).replace("'", "''")
        parts.append(f"{k}='{value}'")
    return ",".join(parts)


def parse_key(entity: EntitySet, text: str) -> dict[str, str]:
    """`dataAreaId='usmf',ItemNumber='%20X'` (all key fields named) or `'USD'` for a single key."""
    text = unquote(text)
    pairs = re.findall(r"\s*(?:(\w+)\s*=\s*)?'((?:[^']|'')*)'\s*(?:,|$)", text)
    rebuilt = ",".join((f"{n}=" if n else "") + "'" + v + "'" for n, v in pairs)
    if not pairs or rebuilt.replace(" ", "") != text.replace(" ", ""):
        raise bad_request(f"Bad key segment '({text})'.")
    if len(pairs) == 1 and not pairs[0][0] and len(entity.key) == 1:
        return {entity.key[0]: pairs[0][1].replace("''", "'")}
    values = {name: value.replace("''", "'") for name, value in pairs}
    if set(values) != set(entity.key) or len(pairs) != len(entity.key):
        raise bad_request(
            "The number of keys specified in the URI does not match number of key properties for the "
            f"resource '{NAMESPACE}.{entity.entity_type}'."
        )
    return values


def etag(version: int, rec_id: int) -> str:
    """W/"<base64 of 'RecVersion,RecId'>" as F&O formats it (reference section 3)."""
    raw = f"'{version},{rec_id}'".encode()
    return 'W/"' + base64.b64encode(raw).decode() + '"'
