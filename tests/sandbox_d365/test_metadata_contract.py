"""The simulator's entity sets, keys and fields match the reference metadata (a typo fails the build).

`schema.json` must equal what `build_from_reference` makes from the recorded F&O metadata, read at run time
from the shared research folder beside the checkout (tests/fixtures/reference.py); the field
names the simulator's rules and events use must exist; and a row refuses an unknown field name.
The client's own names are checked the same way in tests/d365/test_metadata_names.py.
"""

from __future__ import annotations

import pytest

from connector.dev.sandbox.d365.entities import UnknownFieldError, blank_record
from connector.dev.sandbox.d365.events import EVENT_FIELDS
from connector.dev.sandbox.d365.metadata import (
    _recorded_records,
    build_from_reference,
    load_schema,
    verbatim_customer_properties,
)
from connector.dev.sandbox.d365.rules import KEY_LABELS, PRODUCT_TEXT_FIELDS, TABLES
from connector.dev.sandbox.d365.seed import default_seed
from tests.fixtures.reference import D365_REFERENCE as REF

needs_reference = pytest.mark.skipif(not REF.is_dir(), reason=f"reference folder {REF} not present")
SCHEMA = load_schema()

EXPECTED_KEYS = {
    "CustomersV3": ("dataAreaId", "CustomerAccount"),
    "CustomerGroups": ("dataAreaId", "CustomerGroupId"),
    "Currencies": ("CurrencyCode",),
    "LegalEntities": ("LegalEntityId",),
    "ReleasedProductsV2": ("dataAreaId", "ItemNumber"),
    "ReleasedProductCreationsV2": ("dataAreaId", "ItemNumber"),
    "SalesOrderHeadersV2": ("dataAreaId", "SalesOrderNumber"),
    "SalesOrderLines": ("dataAreaId", "InventoryLotId"),
}


@needs_reference
def test_checked_in_schema_equals_the_reference() -> None:
    rebuilt = build_from_reference(REF)
    assert rebuilt == SCHEMA, "regenerate: python -m connector.dev.sandbox.d365.metadata <reference dir>"


@needs_reference
def test_customers_match_the_verbatim_metadata_excerpt() -> None:
    assert set(SCHEMA.entity_sets["CustomersV3"].properties) == verbatim_customer_properties(REF)


@needs_reference
def test_responses_carry_only_fields_real_responses_carry() -> None:
    recorded = _recorded_records(REF / "samples" / "nango-recorded-fno-responses.json")
    compared = 0
    for name, record in recorded.items():
        if name in SCHEMA.entity_sets:
            assert set(blank_record(SCHEMA.entity_sets[name], SCHEMA)) <= set(record), name
            compared += 1
    assert compared >= 5


def test_entity_sets_and_keys() -> None:
    assert {n: e.key for n, e in SCHEMA.entity_sets.items()} == EXPECTED_KEYS
    assert "SalesOrderLines" in SCHEMA.entity_sets["SalesOrderHeadersV2"].navigation
    assert "LineNumber" in SCHEMA.entity_sets["SalesOrderLines"].properties


def test_names_the_simulator_uses_exist() -> None:
    props = {n: set(e.properties) for n, e in SCHEMA.entity_sets.items()}
    for entity_set, fields in EVENT_FIELDS.items():
        assert set(fields) <= props[entity_set]
    for entity_set, (_, _, fields) in TABLES.items():
        assert set(fields) <= props[entity_set], entity_set
    assert set(KEY_LABELS) <= set().union(*props.values())
    assert set(PRODUCT_TEXT_FIELDS) <= props["ReleasedProductCreationsV2"]
    assert not set(PRODUCT_TEXT_FIELDS) & props["ReleasedProductsV2"]  # no ProductName on released products
    seed = default_seed()
    for key, entity_set in [("customers", "CustomersV3"), ("customer_groups", "CustomerGroups"),
                            ("currencies", "Currencies"), ("legal_entities", "LegalEntities")]:  # fmt: skip
        for record in seed[key]:
            assert set(record) <= props[entity_set], (entity_set, set(record) - props[entity_set])
    for product in seed["released_products"]:
        assert set(product) - set(PRODUCT_TEXT_FIELDS) <= props["ReleasedProductsV2"]


def test_a_row_refuses_an_invented_field() -> None:
    row = blank_record(SCHEMA.entity_sets["CustomersV3"], SCHEMA)
    assert row.get("OrganizationName") == ""
    with pytest.raises(UnknownFieldError):
        row.get("Name")
    with pytest.raises(UnknownFieldError):
        row["CustomerGroup"] = "10"
