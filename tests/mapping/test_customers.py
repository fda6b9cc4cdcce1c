"""Customer matching keys, country resolution, stored account and the CustomersV3 create payload."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.d365.models import Customer
from connector.errors import ConfigError
from connector.mapping.customers import (
    country_for,
    customer_match_key,
    d365_customer_match_key,
    normalize_name,
    org_account,
    plan_customer,
)
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from tests.mapping.factories import cfg, org, person


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Contoso Pumps GmbH", "contoso pumps"),
        ("  CONTOSO   pumps ", "contoso pumps"),
        ("Müller & Söhne GmbH.", "muller and sohne"),
        ("O'Brien & Sons", "o brien and sons"),
        ("Straße AG", "strasse"),
        ("Acme, Inc.", "acme"),
        ("Acme Co. Ltd", "acme"),
        ("Ltd", "ltd"),  # a name that is only a legal form stays
        ("Société Générale S.A.", "societe generale s a"),
        ("", ""),
    ],
)
def test_normalize_name(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


@given(st.text())
def test_normalize_name_is_idempotent(name: str) -> None:
    once = normalize_name(name)
    assert normalize_name(once) == once


def test_match_keys_of_org_and_d365_customer_agree() -> None:
    customer = Customer.model_validate(
        {
            "dataAreaId": "demf",
            "CustomerAccount": "DE-001",
            "OrganizationName": "CONTOSO PUMPS",
            "AddressCountryRegionId": "deu",
        }
    )
    assert customer_match_key(org(), "DEU") == d365_customer_match_key(customer) == "contoso pumps|DEU"
    assert customer_match_key(org(), "USA") != d365_customer_match_key(customer)
    assert customer_match_key(org(), None) == "contoso pumps|"


@pytest.mark.parametrize(
    ("country", "legal_entity", "expected"),
    [
        ("Germany", None, "DEU"),
        ("  GERMANY ", None, "DEU"),  # country_map is case-insensitive
        ("United States", None, "USA"),
        ("FRA", None, "FRA"),  # a 3-letter id is taken as is
        ("aut", None, "AUT"),
        (None, None, "USA"),  # no country: the default
        ("", None, "USA"),
        (None, "demf", "DEU"),  # per legal entity default
    ],
)
def test_country_for(country: str | None, legal_entity: str | None, expected: str) -> None:
    config = cfg(customer={"defaults_by_legal_entity": {"demf": {"country": "DEU"}}})
    organization = org(address={"value": "x", "country": country})
    assert country_for(organization, config, legal_entity) == expected


def test_country_for_without_org_or_address_is_default() -> None:
    assert country_for(None, cfg()) == "USA"
    assert country_for(org(address=None), cfg()) == "USA"


def test_unmapped_country_fails_instead_of_guessing() -> None:
    with pytest.raises(MappingError) as info:
        country_for(org(address={"value": "x", "country": "Deutschland"}), cfg())
    assert info.value.problems == [
        "organization 5 'Contoso Pumps GmbH': country 'Deutschland' is not in customer.country_map; "
        "add it to the mapping file with its D365 country/region id (e.g. USA)"
    ]


def test_org_account_reads_the_configured_field() -> None:
    fields = ResolvedFields(organization={"D365 account": " US-001 "})
    assert org_account(org(), cfg(), fields) == "US-001"
    assert org_account(org(), cfg(), ResolvedFields()) is None
    assert org_account(org(), cfg(), ResolvedFields(organization={"D365 account": ""})) is None
    without = cfg(customer={"match_rules": ["name"]}, pipedrive_fields={"org_customer_account": None})
    assert org_account(org(), without, fields) is None
    with pytest.raises(MappingError, match=r"organization 5 'Contoso Pumps GmbH': field 'D365 account' has several"):
        org_account(org(), cfg(), ResolvedFields(organization={"D365 account": ["A", "B"]}))


def test_new_customer_for_organization_with_person_contact() -> None:
    created = plan_customer(org(), person(), cfg(), "demf").payload
    assert created.to_payload() == {
        "dataAreaId": "demf",
        "PartyType": "Organization",
        "OrganizationName": "Contoso Pumps GmbH",
        "CustomerGroupId": "30",
        "SalesCurrencyCode": "USD",
        "LanguageId": "en-us",
        "PaymentTerms": "Net30",
        "AddressStreet": "Hauptstr. 5",
        "AddressCity": "Berlin",
        "AddressZipCode": "10115",
        "AddressCountryRegionId": "DEU",
        "PrimaryContactEmail": "anna@contoso.example",  # the primary one, not the first
        "PrimaryContactPhone": "+49 30 1234",
    }
    assert "CustomerAccount" not in created.to_payload()  # D365's number sequence assigns it


def test_new_customer_uses_legal_entity_defaults_and_overrides() -> None:
    config = cfg(customer={"defaults_by_legal_entity": {"demf": {"customer_group": "10", "currency": "eur"}}})
    created = plan_customer(org(address=None), None, config, "DEMF").payload
    payload = created.to_payload()
    assert (payload["CustomerGroupId"], payload["SalesCurrencyCode"], payload["AddressCountryRegionId"]) == (
        "10",
        "EUR",
        "USA",
    )
    assert "PrimaryContactEmail" not in payload
    explicit = plan_customer(org(), None, config, "usmf", country="GBR", currency="gbp").payload.to_payload()
    assert (explicit["AddressCountryRegionId"], explicit["SalesCurrencyCode"], explicit["CustomerGroupId"]) == (
        "GBR",
        "GBP",
        "30",
    )


def test_person_phone_falls_back_to_first_and_blank_contacts_are_left_out() -> None:
    who = person(emails=[{"value": "  "}], phones=[{"value": "111"}, {"value": "222"}])
    payload = plan_customer(org(), who, cfg(), "usmf").payload.to_payload()
    assert payload["PrimaryContactPhone"] == "111"
    assert "PrimaryContactEmail" not in payload


def test_new_customer_for_a_person_only_deal() -> None:
    payload = plan_customer(None, person(first_name="Anna", last_name="Schmidt"), cfg(), "usmf").payload.to_payload()
    assert (payload["PartyType"], payload["PersonFirstName"], payload["PersonLastName"]) == (
        "Person",
        "Anna",
        "Schmidt",
    )
    split = plan_customer(None, person(name="Jean Paul Sartre"), cfg(), "usmf").payload.to_payload()
    assert (split["PersonFirstName"], split["PersonLastName"]) == ("Jean Paul", "Sartre")


@pytest.mark.parametrize(
    ("organization", "who", "message"),
    [
        (org(name="  "), None, "organization 5 has no name; give it a name in Pipedrive"),
        (None, None, "the deal has neither an organization nor a person; link one in Pipedrive"),
        (None, person(name=" "), "person 9 has no name; give them a name in Pipedrive"),
    ],
)
def test_new_customer_refuses_nameless_parties(organization: object, who: object, message: str) -> None:
    with pytest.raises(MappingError) as info:
        plan_customer(organization, who, cfg(), "usmf")  # type: ignore[arg-type]
    assert info.value.problems == [message]


# --- reference data: state, county, account template ------------------------------------------------

ESTONIA = {"value": "Narva mnt 5, Tallinn", "country": "Estonia", "locality": "Tallinn"}
AREAS = {
    "country_map": {"Estonia": "EST", "United States": "USA"},
    "state_map": {"EST": {"Harju maakond": "HARJU"}, "USA": {"New York": "NY"}},
    "county_map": {"USA": {"Kings County": "KINGS"}},
}


@pytest.mark.parametrize(
    ("address", "state", "county", "warned"),
    [
        ({**ESTONIA, "admin_area_level_1": "Harju maakond"}, "HARJU", None, []),
        ({**ESTONIA, "admin_area_level_1": "  harju MAAKOND "}, "HARJU", None, []),
        ({**ESTONIA, "admin_area_level_1": "harju"}, "HARJU", None, []),  # already the D365 id
        ({**ESTONIA, "admin_area_level_1": "Tartumaa"}, None, None, ["state 'Tartumaa'"]),
        ({**ESTONIA, "admin_area_level_1": "New York"}, None, None, ["state 'New York'"]),  # another country's
        (
            {
                "value": "x",
                "country": "United States",
                "admin_area_level_1": "New York",
                "admin_area_level_2": "Kings County",
            },
            "NY",
            "KINGS",
            [],
        ),
        (
            {"value": "x", "country": "United States", "admin_area_level_2": "Queens County"},
            None,
            None,
            ["county 'Queens County'"],
        ),
        ({**ESTONIA, "admin_area_level_1": " "}, None, None, []),
    ],
)
def test_state_and_county_go_through_the_mapping_or_are_left_out(
    address: dict[str, str], state: str | None, county: str | None, warned: list[str]
) -> None:
    planned = plan_customer(org(address=address), None, cfg(customer=AREAS), "usmf")
    payload = planned.payload.to_payload()
    assert payload.get("AddressState") == state and payload.get("AddressCounty") == county
    assert len(planned.warnings) == len(warned)
    for text, warning in zip(warned, planned.warnings, strict=True):
        assert warning.startswith(f"organization 5 'Contoso Pumps GmbH': {text} is not in customer.")
        assert "left out of the D365 address" in warning


def test_an_unmapped_state_is_never_sent_without_any_map() -> None:
    planned = plan_customer(org(address={**ESTONIA, "country": "Germany", "admin_area_level_1": "Bayern"}), None,
                            cfg(), "usmf")  # fmt: skip
    assert "AddressState" not in planned.payload.to_payload()
    assert planned.warnings == [
        "organization 5 'Contoso Pumps GmbH': state 'Bayern' is not in customer.state_map.DEU, so it was left out of "
        "the D365 address; add it with its D365 state id to fill it in"
    ]


def test_account_template_gives_a_manual_account() -> None:
    config = cfg(customer={"account_template": "PD-{org_id}"})
    assert plan_customer(org(), person(), config, "usmf").payload.to_payload()["CustomerAccount"] == "PD-5"
    persons = cfg(customer={"account_template": "P{person_id}"})
    assert plan_customer(None, person(), persons, "usmf").payload.to_payload()["CustomerAccount"] == "P9"
    with pytest.raises(MappingError, match=r"needs an organization, and the deal has only a person"):
        plan_customer(None, person(), config, "usmf")
    long = cfg(customer={"account_template": "PIPEDRIVE-CUSTOMERS-{org_id}"})
    with pytest.raises(MappingError, match=r"gives account 'PIPEDRIVE-CUSTOMERS-5'; D365 accounts have 1 to 20"):
        plan_customer(org(), None, long, "usmf")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("PD-FIXED", "must contain {org_id} or {person_id} so each customer gets its own account"),
        ("PD-{deal_id}", "unknown placeholder {deal_id}; allowed: {org_id}, {person_id}"),
        ("PD-{org_id:05d}", "placeholder {org_id} takes no format spec or conversion"),
        ("PD-{org_id", "not a valid template"),
    ],
)
def test_bad_account_templates_are_refused_at_start(template: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg(customer={"account_template": template})
    assert f"customer.account_template: {problem}" in str(info.value)
