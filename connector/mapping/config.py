"""The mapping configuration: everything that differs between customers, in one validated file.

A bad file fails at start with a `ConfigError` that names every bad key path and its problem
(e.g. ``mapping.yaml: dimensions.sources.CostCenter.field: required``), so an admin can fix it
without reading code. Pipedrive custom fields are referred to by their NAME; the client's field
resolver turns names into the account's 40-character keys at run time (keys differ per account).
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from connector.errors import ConfigError
from connector.mapping.events import EventsConfig

# D365 company ids (dataAreaId) are at most 4 characters and compared case-insensitively
# (docs/api-facts.md, D365 §9); we keep them lowercase, as D365 returns them.
LegalEntity = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z0-9]{1,4}$")]
CurrencyCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
CountryId = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2,3}$")]

# Chart-of-accounts delimiter options (DimensionLedgerAccountDelimiter: hyphen, period, underscore, bar).
Delimiter = Literal["-", ".", "_", "|"]
MatchRule = Literal["account_field", "name_country", "name"]
# Header string fields that can carry the deal reference (docs/api-facts.md, D365 §2).
ReferenceField = Literal["CustomersOrderReference", "CustomerRequisitionNumber"]

# Placeholders the order reference template may use, with sample values used to validate it.
REFERENCE_PLACEHOLDERS: dict[str, object] = {"deal_id": 1, "pipeline_id": 1, "org_id": 1, "owner_id": 1}
# Placeholders of a manual customer account (`customer.account_template`).
ACCOUNT_PLACEHOLDERS: dict[str, object] = {"org_id": 1, "person_id": 1}


def _placeholders(template: str, allowed: dict[str, object]) -> set[str]:
    """The placeholder names of a `str.format` template; unknown names, specs or bad syntax raise ValueError."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from exc
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in allowed:
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {', '.join('{' + p + '}' for p in allowed)}")
        if conv or spec:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        names.add(name)
    return names


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in the file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalEntityConfig(_Strict):
    default: LegalEntity
    by_pipeline: dict[int, LegalEntity] = Field(default_factory=dict)
    # The currency of released products' sales prices (each company's accounting currency); when a
    # company is not listed it is read from D365 (connector.flows.masters.company_currency).
    accounting_currency: dict[LegalEntity, CurrencyCode] = Field(default_factory=dict)


class CustomerDefaults(_Strict):
    """Values for customers the connector creates in D365 (`CustomersV3`)."""

    customer_group: NonEmpty
    currency: CurrencyCode
    payment_terms: NonEmpty | None = None
    language: NonEmpty | None = None
    # D365 CountryRegionId (3 letters, e.g. USA) used when the organization's country is unknown.
    country: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2,3}$")]


class CustomerDefaultsOverride(_Strict):
    """Per legal entity changes to the defaults (e.g. another customer group or currency in demf)."""

    customer_group: NonEmpty | None = None
    currency: CurrencyCode | None = None
    payment_terms: NonEmpty | None = None
    language: NonEmpty | None = None
    country: (
        Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2,3}$")] | None
    ) = None


def _default_rules() -> list[MatchRule]:
    return ["account_field", "name_country"]


class CustomerConfig(_Strict):
    match_rules: list[MatchRule] = Field(default_factory=_default_rules, min_length=1)
    create_missing: bool = True
    defaults: CustomerDefaults
    defaults_by_legal_entity: dict[LegalEntity, CustomerDefaultsOverride] = Field(default_factory=dict)
    # Pipedrive address country text (as sellers type it, e.g. "Germany") -> D365 CountryRegionId.
    country_map: dict[str, Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2)]] = (
        Field(default_factory=dict)
    )
    # Per D365 country id: Pipedrive's state/region text (admin_area_level_1, e.g. "Harju maakond") -> D365
    # StateId, and county text (admin_area_level_2) -> D365 CountyId. Unmapped values are left out (audited).
    state_map: dict[CountryId, dict[str, NonEmpty]] = Field(default_factory=dict)
    county_map: dict[CountryId, dict[str, NonEmpty]] = Field(default_factory=dict)
    # A manual customer-account number sequence: the account made from the deal's party (e.g. "PD{org_id}",
    # at most 20 characters). Unset: D365's number sequence assigns it.
    account_template: NonEmpty | None = None

    @field_validator("match_rules")
    @classmethod
    def _unique_rules(cls, rules: list[MatchRule]) -> list[MatchRule]:
        if len(set(rules)) != len(rules):
            raise ValueError("each rule may appear once")
        return rules

    def defaults_for(self, legal_entity: str | None) -> CustomerDefaults:
        """The new-customer defaults in one company: the common ones with its overrides applied."""
        override = self.defaults_by_legal_entity.get((legal_entity or "").lower())
        if override is None:
            return self.defaults
        changes = override.model_dump(exclude_none=True)
        return self.defaults.model_copy(update=changes)

    @field_validator("country_map")
    @classmethod
    def _fold_country_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip().casefold(): v for k, v in value.items()}

    @field_validator("state_map", "county_map")
    @classmethod
    def _fold_area_keys(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return {country: {k.strip().casefold(): v for k, v in areas.items()} for country, areas in value.items()}

    @field_validator("account_template")
    @classmethod
    def _check_account_template(cls, template: str | None) -> str | None:
        if template is None:
            return None
        names = _placeholders(template, ACCOUNT_PLACEHOLDERS)
        if not names & {"org_id", "person_id"}:
            raise ValueError("must contain {org_id} or {person_id} so each customer gets its own account")
        return template


class PipedriveFields(_Strict):
    """Custom field NAMES (not keys): where the D365 customer account and order number live."""

    org_customer_account: NonEmpty | None = None
    deal_order_number: NonEmpty | None = None


# How the SalesOrderNumber is made (docs/architecture.md, "Numbering modes").
Numbering = Literal["from_deal", "d365_sequence"]
# F&O's sales order number (SalesIdBase) holds at most 20 characters.
MAX_ORDER_NUMBER = 20


class OrderConfig(_Strict):
    reference_template: NonEmpty = "PD-{deal_id}"
    reference_field: ReferenceField = "CustomersOrderReference"
    write_back_order_number: bool = False

    # d365_sequence (default): D365's number sequence assigns the number; the header is created alone, then
    # the lines in one changeset carrying it. from_deal: the number comes from `number_template` (the D365
    # admin lets the sequence take manual numbers); header and lines go in one changeset and D365's "record
    # already exists" is a second dedupe guard.
    numbering: Numbering = "d365_sequence"
    number_template: NonEmpty | None = None

    @field_validator("reference_template", "number_template")
    @classmethod
    def _check_template(cls, template: str | None) -> str | None:
        if template is None:
            return None
        names: set[str] = set()
        try:
            for _, name, spec, conv in string.Formatter().parse(template):
                if name is None:
                    continue
                if name not in REFERENCE_PLACEHOLDERS:
                    allowed = ", ".join("{" + p + "}" for p in REFERENCE_PLACEHOLDERS)
                    raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed}")
                if conv or spec:
                    raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
                names.add(name)
        except ValueError as exc:
            if "placeholder" in str(exc):
                raise
            raise ValueError(f"not a valid template ({exc})") from exc
        # The reference is how a crashed build finds its order again: it must be unique per deal.
        if "deal_id" not in names:
            raise ValueError("must contain {deal_id} so each deal gets its own reference")
        return template

    @model_validator(mode="after")
    def _numbering(self) -> OrderConfig:
        if self.numbering == "from_deal" and self.number_template is None:
            raise ValueError('number_template: required when numbering is from_deal (e.g. "PD{deal_id}")')
        if self.numbering == "d365_sequence" and self.number_template is not None:
            raise ValueError(
                "number_template: only used with numbering: from_deal; remove it, or set numbering: from_deal "
                "(the D365 number sequence must then allow manual numbers)"
            )
        if self.number_template is not None:
            sample = self.number_template.format(**dict.fromkeys(REFERENCE_PLACEHOLDERS, 1))
            if len(sample) > MAX_ORDER_NUMBER:
                raise ValueError(f"number_template: makes numbers longer than {MAX_ORDER_NUMBER} characters")
        return self


class LineDefaults(_Strict):
    """Values put on every sales order line; unset ones are left to D365's own defaults."""

    unit: NonEmpty | None = None
    site: NonEmpty | None = None
    warehouse: NonEmpty | None = None
    # Pipedrive's `amount` discount is taken as the discount for the whole line (qty x price), which D365
    # stores per unit (SalesLineDisc "Line discount in amount per price unit"). Pipedrive's own sum math is
    # UNCONFIRMED, so this is configurable: `per_line` (default) or `per_unit`.
    amount_discount: Literal["per_line", "per_unit"] = "per_line"
    # Decimal places a per-unit discount may have; a per-line discount that does not divide exactly fails.
    discount_decimals: int = Field(default=6, ge=0, le=16)
    skip_disabled: bool = True
    # Pipedrive `tax_method: inclusive` prices include tax; D365 takes net prices. `net_price` sends the exact
    # net price (the fewest decimals, up to `price_decimals`, that give the net line amount to the cent);
    # `refuse` fails such deals with a reason.
    inclusive_tax: Literal["net_price", "refuse"] = "net_price"
    price_decimals: int = Field(default=6, ge=0, le=16)
    # Decimals of the deal currency's amounts: totals that differ by more than one such unit per line fail.
    amount_decimals: int = Field(default=2, ge=0, le=6)


class _SourceBase(_Strict):
    # A value present in Pipedrive but missing from `values` fails; an absent value gives `default`
    # (or a blank segment), unless `required`.
    required: bool = False
    default: str | None = None


class DealFieldSource(_SourceBase):
    source: Literal["deal_field"]
    field: NonEmpty
    # Option label (enum fields) or text -> dimension value; without it the label/text is used as is.
    values: dict[str, str] | None = None


class OrgFieldSource(_SourceBase):
    source: Literal["org_field"]
    field: NonEmpty
    values: dict[str, str] | None = None


class PipelineSource(_SourceBase):
    source: Literal["pipeline"]
    values: dict[int, str]


class OwnerSource(_SourceBase):
    source: Literal["owner"]
    values: dict[int, str]


class ConstantSource(_Strict):
    source: Literal["constant"]
    value: str


DimensionSource = Annotated[
    DealFieldSource | OrgFieldSource | PipelineSource | OwnerSource | ConstantSource,
    Field(discriminator="source"),
]
SOURCE_KINDS = ("deal_field", "org_field", "pipeline", "owner", "constant")


class DimensionsConfig(_Strict):
    """The active *Default dimension format* (ordered names + chart-of-accounts delimiter) and sources."""

    order: list[NonEmpty] = Field(default_factory=list)
    delimiter: Delimiter = "-"
    sources: dict[str, DimensionSource] = Field(default_factory=dict)
    # Also put the display value on every line (explicit; D365 would otherwise merge header/item defaults).
    on_lines: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> DimensionsConfig:
        if len(set(self.order)) != len(self.order):
            raise ValueError("order: each dimension may appear once")
        problems: list[str] = []
        for name, src in self.sources.items():
            if name not in self.order:
                problems.append(f"sources.{name}: not in dimensions.order")
            for where, value in _fixed_values(src):
                if self.delimiter in value:
                    problems.append(f"sources.{name}.{where}: contains the delimiter {self.delimiter!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _fixed_values(src: Any) -> list[tuple[str, str]]:
    """Every literal dimension value a source can produce, with its key path, for delimiter checks."""
    out: list[tuple[str, str]] = []
    if isinstance(src, ConstantSource):
        out.append(("value", src.value))
        return out
    if src.default is not None:
        out.append(("default", src.default))
    for key, value in (getattr(src, "values", None) or {}).items():
        out.append((f"values.{key}", value))
    return out


class MappingConfig(_Strict):
    version: Literal[1] = 1
    legal_entity: LegalEntityConfig
    customer: CustomerConfig
    pipedrive_fields: PipedriveFields = Field(default_factory=PipedriveFields)
    order: OrderConfig = Field(default_factory=OrderConfig)
    lines: LineDefaults = Field(default_factory=LineDefaults)
    dimensions: DimensionsConfig = Field(default_factory=DimensionsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> MappingConfig:
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
    base = _path(data, err["loc"])
    out = []
    for piece in _problem(err).split("\n"):
        m = re.match(r"^([A-Za-z0-9_.\-]+): (.+)$", piece, re.DOTALL)
        path, text = (".".join(p for p in (base, m.group(1)) if p), m.group(2)) if m else (base, piece)
        out.append(f"{path}: {text}" if path else text)
    return out


def _path(data: object, loc: tuple[int | str, ...]) -> str:
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
        elif last and isinstance(part, str | int) and not _internal(part):
            parts.append(str(part))
        # anything else is a union tag (e.g. "deal_field") or a validator name: not a key in the file
    return ".".join(parts)


def _internal(part: str | int) -> bool:
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
