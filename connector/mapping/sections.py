"""The sections of the mapping file as validated models: legal entity, customer, order, lines, dimensions.

Each model refuses unknown keys and checks what it can on its own; `connector.mapping.config` puts the
sections together, checks across them and words the errors for the admin.
"""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

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


def template_placeholders(template: str, allowed: dict[str, object]) -> set[str]:
    """The placeholder names of a `str.format` template; unknown names, specs or bad syntax raise ValueError.

    Problems are reported in the order they appear in the template.
    """
    names: set[str] = set()
    fields = iter(string.Formatter().parse(template))
    while True:
        try:
            _, name, spec, conv = next(fields)
        except StopIteration:
            return names
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc})") from exc
        if name is None:
            continue
        if name not in allowed:
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {', '.join('{' + p + '}' for p in allowed)}")
        if conv or spec:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        names.add(name)


class Strict(BaseModel):
    """Unknown keys are errors: a typo in the file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalEntityConfig(Strict):
    default: LegalEntity
    by_pipeline: dict[int, LegalEntity] = Field(default_factory=dict)
    # The currency of released products' sales prices (each company's accounting currency); when a
    # company is not listed it is read from D365 (connector.flows.masters.company_currency).
    accounting_currency: dict[LegalEntity, CurrencyCode] = Field(default_factory=dict)


class CustomerDefaults(Strict):
    """Values for customers the connector creates in D365 (`CustomersV3`)."""

    customer_group: NonEmpty
    currency: CurrencyCode
    payment_terms: NonEmpty | None = None
    language: NonEmpty | None = None
    # D365 CountryRegionId (3 letters, e.g. USA) used when the organization's country is unknown.
    country: CountryId


class CustomerDefaultsOverride(Strict):
    """Per legal entity changes to the defaults (e.g. another customer group or currency in demf)."""

    customer_group: NonEmpty | None = None
    currency: CurrencyCode | None = None
    payment_terms: NonEmpty | None = None
    language: NonEmpty | None = None
    country: CountryId | None = None


def _default_rules() -> list[MatchRule]:
    return ["account_field", "name_country"]


class CustomerConfig(Strict):
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
    def rules_appear_once(cls, rules: list[MatchRule]) -> list[MatchRule]:
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
    def fold_country_names(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip().casefold(): v for k, v in value.items()}

    @field_validator("state_map", "county_map")
    @classmethod
    def fold_area_names(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return {country: {k.strip().casefold(): v for k, v in areas.items()} for country, areas in value.items()}

    @field_validator("account_template")
    @classmethod
    def account_template_names_the_party(cls, template: str | None) -> str | None:
        if template is None:
            return None
        names = template_placeholders(template, ACCOUNT_PLACEHOLDERS)
        if not names & {"org_id", "person_id"}:
            raise ValueError("must contain {org_id} or {person_id} so each customer gets its own account")
        return template


class PipedriveFields(Strict):
    """Custom field NAMES (not keys): where the D365 customer account and order number live."""

    org_customer_account: NonEmpty | None = None
    deal_order_number: NonEmpty | None = None


# How the SalesOrderNumber is made (docs/architecture.md, "Numbering modes").
Numbering = Literal["from_deal", "d365_sequence"]
# F&O's sales order number (SalesIdBase) holds at most 20 characters.
MAX_ORDER_NUMBER = 20


class OrderConfig(Strict):
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
    def templates_name_the_deal(cls, template: str | None) -> str | None:
        if template is None:
            return None
        names = template_placeholders(template, REFERENCE_PLACEHOLDERS)
        # The reference is how a crashed build finds its order again: it must be unique per deal.
        if "deal_id" not in names:
            raise ValueError("must contain {deal_id} so each deal gets its own reference")
        return template

    @model_validator(mode="after")
    def number_template_fits_numbering(self) -> OrderConfig:
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


class LineDefaults(Strict):
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


class _SourceBase(Strict):
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


class ConstantSource(Strict):
    source: Literal["constant"]
    value: str


DimensionSource = Annotated[
    DealFieldSource | OrgFieldSource | PipelineSource | OwnerSource | ConstantSource,
    Field(discriminator="source"),
]
SOURCE_KINDS = ("deal_field", "org_field", "pipeline", "owner", "constant")


class DimensionsConfig(Strict):
    """The active *Default dimension format* (ordered names + chart-of-accounts delimiter) and sources."""

    order: list[NonEmpty] = Field(default_factory=list)
    delimiter: Delimiter = "-"
    sources: dict[str, DimensionSource] = Field(default_factory=dict)
    # Also put the display value on every line (explicit; D365 would otherwise merge header/item defaults).
    on_lines: bool = True

    @model_validator(mode="after")
    def sources_fit_the_format(self) -> DimensionsConfig:
        if len(set(self.order)) != len(self.order):
            raise ValueError("order: each dimension may appear once")
        problems: list[str] = []
        for name, src in self.sources.items():
            if name not in self.order:
                problems.append(f"sources.{name}: not in dimensions.order")
            for where, value in literal_values(src):
                if self.delimiter in value:
                    problems.append(f"sources.{name}.{where}: contains the delimiter {self.delimiter!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


def literal_values(src: DimensionSource) -> list[tuple[str, str]]:
    """Every literal value a dimension source can produce, with its key path under the source.

    The mapping checks them for the delimiter; the doctor checks that each exists in D365.
    """
    if isinstance(src, ConstantSource):
        return [("value", src.value)]
    found = [("default", src.default)] if src.default else []
    return found + [(f"values.{key}", value) for key, value in (src.values or {}).items()]
