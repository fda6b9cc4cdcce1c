"""The mapping configuration: everything that differs between customers, in one validated file.

A bad file fails at start with a `ConfigError` that names every bad key path and its problem
(e.g. ``mapping.yaml: dimensions.sources.CostCenter.field: required``), so an admin can fix it
without reading code. Pipedrive custom fields are referred to by their NAME; the client's field
resolver turns names into the account's 40-character keys at run time (keys differ per account).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from connector.errors import ConfigError
from connector.mapping.events import EventsConfig
from connector.mapping.sections import (
    SOURCE_KINDS,
    CustomerConfig,
    DimensionsConfig,
    LegalEntityConfig,
    LineDefaults,
    OrderConfig,
    PipedriveFields,
    Strict,
)


class MappingConfig(Strict):
    """The whole mapping file: its sections (connector.mapping.sections) and the checks across them."""

    version: Literal[1] = 1
    legal_entity: LegalEntityConfig
    customer: CustomerConfig
    pipedrive_fields: PipedriveFields = Field(default_factory=PipedriveFields)
    order: OrderConfig = Field(default_factory=OrderConfig)
    lines: LineDefaults = Field(default_factory=LineDefaults)
    dimensions: DimensionsConfig = Field(default_factory=DimensionsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)

    @model_validator(mode="after")
    def options_have_their_fields(self) -> MappingConfig:
        if "account_field" in self.customer.match_rules and not self.pipedrive_fields.org_customer_account:
            raise ValueError(
                "customer.match_rules: 'account_field' needs pipedrive_fields.org_customer_account (the field name)"
            )
        if self.order.write_back_order_number and not self.pipedrive_fields.deal_order_number:
            raise ValueError("order.write_back_order_number: needs pipedrive_fields.deal_order_number (the field name)")
        return self


def load_mapping(path: str | Path) -> MappingConfig:
    """Read and validate a mapping file (.yaml/.yml or .json); every problem is reported at once."""
    path = Path(path)
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read mapping file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{label}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None
    return parse_mapping(data, label=label)


def parse_mapping(data: object, *, label: str = "mapping") -> MappingConfig:
    """Validate already-parsed mapping data (a dict); `label` prefixes each error line."""
    if not isinstance(data, dict):
        message = f"{label}: the top level must be a mapping of keys, got {type(data).__name__}"
        raise ConfigError(message, detail=[message])
    try:
        return MappingConfig.model_validate(data)
    except PydanticValidationError as exc:
        lines = [f"{label}: {line}" for err in exc.errors() for line in _describe(data, err)]
        raise ConfigError("\n".join(lines), detail=lines) from None


def _describe(data: object, err: Any) -> list[str]:
    """One readable line per problem; model checks may report several as "rel.path: problem" lines."""
    base = _key_path(data, err["loc"])
    out = []
    for piece in _problem(err).split("\n"):
        m = re.match(r"^([A-Za-z0-9_.\-]+): (.+)$", piece, re.DOTALL)
        path, text = (".".join(p for p in (base, m.group(1)) if p), m.group(2)) if m else (base, piece)
        out.append(f"{path}: {text}" if path else text)
    return out


def _key_path(data: object, loc: tuple[int | str, ...]) -> str:
    """Dotted key path as the admin wrote it: drop pydantic's union-tag and validator loc parts."""
    parts: list[str] = []
    node: Any = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and (part in node or str(part) in node):
            node = node[part] if part in node else node[str(part)]
            parts.append(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            parts.append(str(part))
        elif last and isinstance(part, str | int) and not _pydantic_loc_part(part):
            parts.append(str(part))
        # anything else is a union tag (e.g. "deal_field") or a validator name: not a key in the file
    return ".".join(parts)


def _pydantic_loc_part(part: str | int) -> bool:
    """A union tag, `[key]` or a validator's name in an error's loc: not a key in the admin's file."""
    return isinstance(part, str) and (part in SOURCE_KINDS or part == "[key]" or bool(re.match(r"^[a-z-]+\[", part)))


def _problem(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "union_tag_invalid":
        return f"unknown source {err['ctx']['tag']!r}; use one of {', '.join(SOURCE_KINDS)}"
    if kind == "union_tag_not_found":
        return f"required (source: one of {', '.join(SOURCE_KINDS)})"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    prefix = "key " if "[key]" in err["loc"] else ""
    if kind == "string_too_short" and err["ctx"].get("min_length") == 1:
        msg = "must not be empty"
    elif kind == "string_type" and isinstance(err["input"], int | float) and not isinstance(err["input"], bool):
        # YAML reads 30 and 001 as numbers (001 -> 1): never convert silently, leading zeros matter in D365.
        msg = f'{err["input"]!r} is a number; write it in quotes (e.g. "{err["input"]}") so it is kept exactly'
    elif kind == "int_parsing":
        msg = f"{err['input']!r} is not a whole number (an id is expected)"
    elif kind == "string_pattern_mismatch":
        msg = f"{err['input']!r} has the wrong form ({_PATTERN_HINTS.get(err['ctx']['pattern'], msg)})"
    elif kind == "literal_error":
        msg = f"{err['input']!r} is not allowed; {msg[0].lower()}{msg[1:]}"
    elif msg[:1].isupper():
        msg = f"{msg[0].lower()}{msg[1:]}"
    return prefix + msg


_PATTERN_HINTS = {
    r"^[A-Za-z0-9]{1,4}$": "a D365 company id of 1-4 letters or digits, e.g. usmf",
    r"^[A-Za-z]{3}$": "a 3-letter currency code, e.g. USD",
    r"^[A-Za-z]{2,3}$": "a D365 country/region id, e.g. USA",
}
