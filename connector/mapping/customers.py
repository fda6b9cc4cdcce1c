"""Organization/person -> D365 customer: match keys, the stored account, and the create payload.

Matching compares a normalised organization name plus the D365 country/region id; the flow looks
the key up against D365 customers mapped the same way (`d365_customer_match_key`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from connector.d365.models import Customer, CustomerCreate
from connector.mapping.config import MappingConfig
from connector.mapping.errors import MappingError
from connector.mapping.fields import FieldValueError, ResolvedFields, field_text
from connector.pipedrive.models import Organization, Person

# Legal-form words dropped at the END of a name, so "Acme GmbH" and "ACME" match within one country.
_LEGAL_FORMS = frozenset(
    [
        "ab",
        "ag",
        "as",
        "asa",
        "bv",
        "co",
        "company",
        "corp",
        "corporation",
        "gmbh",
        "inc",
        "incorporated",
        "kg",
        "kft",
        "llc",
        "llp",
        "lp",
        "ltd",
        "limited",
        "nv",
        "oy",
        "oyj",
        "ou",
        "plc",
        "pty",
        "sa",
        "sarl",
        "sas",
        "spa",
        "srl",
        "sro",
    ]
)
_NON_WORD = re.compile(r"[^\w]+")
MAX_ACCOUNT_LENGTH = 20  # F&O CustAccount


def normalize_name(name: str) -> str:
    """Case-, accent-, punctuation- and legal-form-insensitive form of a company name.

    "Müller & Söhne GmbH." -> "muller and sohne"; "" stays "".
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ").replace("ß", "ss")
    words = [w for w in _NON_WORD.sub(" ", text).replace("_", " ").split() if w]
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    return " ".join(words)


def match_key(name: str, country: str | None) -> str:
    """`normalised name|COUNTRY` (country empty when unknown); equal keys mean the same customer."""
    return f"{normalize_name(name)}|{(country or '').strip().upper()}"


def customer_match_key(org: Organization, country: str | None) -> str:
    """Match key of a Pipedrive organization; `country` is its D365 id (see `country_for`)."""
    return match_key(org.name, country)


def d365_customer_match_key(customer: Customer) -> str:
    """Match key of a D365 customer, comparable with `customer_match_key`."""
    return match_key(customer.display_name, customer.address_country_region_id)


def country_for(org: Organization | None, cfg: MappingConfig, legal_entity: str | None = None) -> str:
    """The D365 CountryRegionId for an organization: mapped from its address, else the default.

    A country that is set but not mapped fails (rather than guessing the default) because a wrong
    country both mismatches customers and creates them with a wrong address.
    """
    customer = cfg.customer
    raw = (org.address.country if org and org.address else None) or ""
    text = raw.strip()
    if not text:
        return customer.defaults_for(legal_entity).country
    mapped = customer.country_map.get(text.casefold())
    if mapped:
        return mapped
    if re.fullmatch(r"[A-Za-z]{3}", text):
        return text.upper()  # already a D365/ISO alpha-3 id
    who = f"organization {org.id} {org.name!r}" if org else "organization"
    raise MappingError(
        f"{who}: country {text!r} is not in customer.country_map; "
        "add it to the mapping file with its D365 country/region id (e.g. USA)"
    )


def org_account(org: Organization, cfg: MappingConfig, resolved_fields: ResolvedFields) -> str | None:
    """The D365 customer account stored on the organization's configured custom field, if any.

    `resolved_fields.organization` holds the organization's field values by name.
    """
    name = cfg.pipedrive_fields.org_customer_account
    if not name:
        return None
    try:
        return field_text(resolved_fields.org_value(name))
    except FieldValueError as exc:
        raise MappingError(f"organization {org.id} {org.name!r}: field {name!r} {exc}") from None


PERSON_MARKER_FIELD = "NameAlias"  # D365 search name; person customers we create carry their marker in it


def person_marker(person_id: int) -> str:
    """The unique value a person customer is created with, so it can be found again after a lost answer
    (a person has no name+country match key). At most 20 characters, as NameAlias allows."""
    return f"PD-P{person_id}"[:20]


@dataclass(frozen=True)
class NewCustomer:
    """A CustomersV3 create payload and what was left out of it (for the audit trail)."""

    payload: CustomerCreate
    warnings: list[str]


def plan_customer(
    org: Organization | None,
    person: Person | None,
    cfg: MappingConfig,
    legal_entity: str,
    *,
    country: str | None = None,
    currency: str | None = None,
) -> NewCustomer:
    """The CustomersV3 create payload and the warnings about address values left out.

    An organization gives an Organization party; a deal with only a person gives a Person party.
    Primary contact email/phone come from the person. `country` defaults to `country_for(org)`,
    `currency` and the rest to the legal entity's configured defaults. The account comes from
    `customer.account_template` (a manual number sequence), else from D365's number sequence.
    State and county go through `customer.state_map`/`county_map`: an unmapped value is not sent.
    """
    defaults = cfg.customer.defaults_for(legal_entity)
    country_id = country or country_for(org, cfg, legal_entity)
    common: dict[str, object] = {
        "data_area_id": legal_entity,
        "customer_account": customer_account(org, person, cfg),
        "customer_group_id": defaults.customer_group,
        "sales_currency_code": (currency or defaults.currency).upper(),
        "payment_terms": defaults.payment_terms,
        "language_id": defaults.language,
        "address_country_region_id": country_id,
        "primary_contact_email": _clean(person.primary_email) if person else None,
        "primary_contact_phone": _primary_phone(person),
    }
    warnings: list[str] = []
    if org is not None:
        if not org.name.strip():
            raise MappingError(f"organization {org.id} has no name; give it a name in Pipedrive")
        common.update(_address(org, country_id, cfg, warnings))
        payload = CustomerCreate(party_type="Organization", organization_name=org.name.strip(), **common)
        return NewCustomer(payload, warnings)
    if person is None:
        raise MappingError("the deal has neither an organization nor a person; link one in Pipedrive")
    first, last = _person_names(person)
    if not (first or last):
        raise MappingError(f"person {person.id} has no name; give them a name in Pipedrive")
    payload = CustomerCreate(
        party_type="Person", person_first_name=first, person_last_name=last, name_alias=person_marker(person.id),
        **common,
    )  # fmt: skip
    return NewCustomer(payload, warnings)


def customer_account(org: Organization | None, person: Person | None, cfg: MappingConfig) -> str | None:
    """The account for a manual number sequence (`customer.account_template`); None = D365 assigns it."""
    template = cfg.customer.account_template
    if template is None:
        return None
    if "{org_id}" in template and org is None:
        raise MappingError(
            f"customer.account_template {template!r} needs an organization, and the deal has only a person; "
            "link an organization in Pipedrive or use {person_id} in the template"
        )
    account = template.format(org_id=org.id if org else "", person_id=person.id if person else "")
    if not account.strip() or len(account) > MAX_ACCOUNT_LENGTH:
        raise MappingError(
            f"customer.account_template {template!r} gives account {account!r}; D365 accounts have 1 to "
            f"{MAX_ACCOUNT_LENGTH} characters"
        )
    return account


def _address(org: Organization, country: str, cfg: MappingConfig, warnings: list[str]) -> dict[str, object]:
    addr = org.address
    if addr is None:
        return {}
    street = " ".join(p for p in (addr.route, addr.street_number) if p and p.strip()) or None
    who = f"organization {org.id} {org.name!r}"
    return {
        "address_street": street,
        "address_city": _clean(addr.locality),
        "address_zip_code": _clean(addr.postal_code),
        "address_state": _area(addr.admin_area_level_1, "state", cfg.customer.state_map, country, who, warnings),
        "address_county": _area(addr.admin_area_level_2, "county", cfg.customer.county_map, country, who, warnings),
    }


def _area(
    text: str | None, what: str, table: dict[str, dict[str, str]], country: str, who: str, warnings: list[str]
) -> str | None:
    """A D365 state/county id from Pipedrive's free text (or an id already), else None with a warning."""
    value = _clean(text)
    if value is None:
        return None
    areas = table.get(country, {})
    mapped = areas.get(value.casefold())
    if mapped is None:
        mapped = next((v for v in areas.values() if v.casefold() == value.casefold()), None)  # already an id
    if mapped is None:
        warnings.append(
            f"{who}: {what} {value!r} is not in customer.{what}_map.{country}, so it was left out of the D365 "
            f"address; add it with its D365 {what} id to fill it in"
        )
    return mapped


def _primary_phone(person: Person | None) -> str | None:
    if person is None or not person.phones:
        return None
    chosen = next((p for p in person.phones if p.primary), person.phones[0])
    return _clean(chosen.value)


def _person_names(person: Person) -> tuple[str | None, str | None]:
    if (person.first_name or "").strip() or (person.last_name or "").strip():
        return _clean(person.first_name), _clean(person.last_name)
    parts = person.name.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, _clean(parts[0]))


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value else None
