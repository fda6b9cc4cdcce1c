"""MappingConfig / load_mapping: valid files load; every kind of bad key is named with its problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.errors import ConfigError
from connector.mapping.config import load_mapping, parse_mapping
from tests.mapping.factories import mapping_data

REPO = Path(__file__).resolve().parents[2]


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_mapping(data, label="mapping.yaml")
    lines = str(info.value).splitlines()
    assert info.value.detail == lines
    return lines


def test_valid_mapping_normalises_codes() -> None:
    data = mapping_data(legal_entity={"default": "USMF", "by_pipeline": {"2": "DEmf"}})
    data["customer"]["defaults"]["currency"] = "usd"
    cfg = parse_mapping(data)
    assert cfg.legal_entity.default == "usmf"
    assert cfg.legal_entity.by_pipeline == {2: "demf"}  # JSON-style string keys become pipeline ids
    assert cfg.customer.defaults.currency == "USD"
    assert cfg.customer.country_map["germany"] == "DEU"  # keys fold case for lookups
    assert cfg.order.reference_field == "CustomersOrderReference"
    assert cfg.dimensions.sources["BusinessUnit"].source == "pipeline"


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_load_mapping_reads_yaml_and_json(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"mapping{suffix}"
    data = mapping_data()
    path.write_text(json.dumps(data, default=str) if suffix == ".json" else yaml.safe_dump(data))
    cfg = load_mapping(path)
    assert cfg.dimensions.order == ["BusinessUnit", "CostCenter", "Department"]
    assert cfg.dimensions.sources["Department"].values == {7: "022"}  # type: ignore[union-attr]


def test_repo_example_and_demo_files_are_valid() -> None:
    example = load_mapping(REPO / "config" / "mapping.example.yaml")
    demo = load_mapping(REPO / "config" / "demo-mapping.yaml")
    assert example.dimensions.order and demo.dimensions.order


def test_missing_file_and_bad_syntax_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope\.yaml: cannot read mapping file"):
        load_mapping(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("legal_entity: [unclosed\n")
    with pytest.raises(ConfigError, match=r"^broken\.yaml: not valid YAML"):
        load_mapping(bad)
    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{")
    with pytest.raises(ConfigError, match=r"^broken\.json: not valid JSON"):
        load_mapping(bad_json)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"^empty\.yaml: the top level must be a mapping of keys, got NoneType"):
        load_mapping(empty)


def _without(path: str) -> dict[str, Any]:
    data = mapping_data()
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[p]
    del node[last]
    return data


def _with(path: str, value: Any) -> dict[str, Any]:
    data = mapping_data()
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_without("legal_entity"), "mapping.yaml: legal_entity: required"),
        (_without("legal_entity.default"), "mapping.yaml: legal_entity.default: required"),
        (_without("customer.defaults.customer_group"), "mapping.yaml: customer.defaults.customer_group: required"),
        (_without("customer.defaults.currency"), "mapping.yaml: customer.defaults.currency: required"),
        (_without("customer.defaults.country"), "mapping.yaml: customer.defaults.country: required"),
        (
            _with("customer.defaults.customer_group", " "),
            "mapping.yaml: customer.defaults.customer_group: must not be empty",
        ),
        (
            _with("legal_entity.default", "toolong"),
            "mapping.yaml: legal_entity.default: 'toolong' has the wrong form (a D365 company id of 1-4 letters or digits, e.g. usmf)",
        ),
        (
            _with("legal_entity.by_pipeline", {"sales": "usmf"}),
            "mapping.yaml: legal_entity.by_pipeline.sales: key 'sales' is not a whole number (an id is expected)",
        ),
        (
            _with("legal_entity.by_pipeline", {3: "us-mf"}),
            "mapping.yaml: legal_entity.by_pipeline.3: 'us-mf' has the wrong form (a D365 company id of 1-4 letters or digits, e.g. usmf)",
        ),
        (
            _with("customer.defaults.currency", "US$"),
            "mapping.yaml: customer.defaults.currency: 'US$' has the wrong form (a 3-letter currency code, e.g. USD)",
        ),
        (
            _with("customer.match_rules", ["name", "fuzzy"]),
            "mapping.yaml: customer.match_rules.1: 'fuzzy' is not allowed; input should be 'account_field', 'name_country' or 'name'",
        ),
        (
            _with("customer.match_rules", ["name", "name"]),
            "mapping.yaml: customer.match_rules: each rule may appear once",
        ),
        (
            _with("customer.match_rules", []),
            "mapping.yaml: customer.match_rules: list should have at least 1 item after validation, not 0",
        ),
        (_with("customer.extra", 1), "mapping.yaml: customer.extra: unknown key"),
        (_with("colour", "blue"), "mapping.yaml: colour: unknown key"),
        (_with("version", 2), "mapping.yaml: version: 2 is not allowed; input should be 1"),
        (
            _with("order.reference_template", "{deal_id}-{title}"),
            "mapping.yaml: order.reference_template: unknown placeholder {title}; allowed: {deal_id}, {pipeline_id}, {org_id}, {owner_id}",
        ),
        (
            _with("order.reference_template", "PD-{pipeline_id}"),
            "mapping.yaml: order.reference_template: must contain {deal_id} so each deal gets its own reference",
        ),
        (
            _with("order.reference_template", "PD-{deal_id:06d}"),
            "mapping.yaml: order.reference_template: placeholder {deal_id} takes no format spec or conversion",
        ),
        (
            _with("order.reference_template", "PD-{deal_id"),
            "mapping.yaml: order.reference_template: not a valid template (expected '}' before end of string)",
        ),
        (
            _with("order.reference_field", "SalesOrderName"),
            "mapping.yaml: order.reference_field: 'SalesOrderName' is not allowed; input should be 'CustomersOrderReference' or 'CustomerRequisitionNumber'",
        ),
        (
            _with("dimensions.delimiter", "/"),
            "mapping.yaml: dimensions.delimiter: '/' is not allowed; input should be '-', '.', '_' or '|'",
        ),
        (
            _with("dimensions.sources.CostCenter", {"source": "deal_field"}),
            "mapping.yaml: dimensions.sources.CostCenter.field: required",
        ),
        (
            _with("dimensions.sources.CostCenter", {"source": "org_field", "field": ""}),
            "mapping.yaml: dimensions.sources.CostCenter.field: must not be empty",
        ),
        (
            _with("dimensions.sources.BusinessUnit", {"source": "pipeline"}),
            "mapping.yaml: dimensions.sources.BusinessUnit.values: required",
        ),
        (
            _with("dimensions.sources.Department", {"source": "owner", "values": {"bob": "1"}}),
            "mapping.yaml: dimensions.sources.Department.values.bob: key 'bob' is not a whole number (an id is expected)",
        ),
        (
            _with("dimensions.sources.Department", {"source": "constant"}),
            "mapping.yaml: dimensions.sources.Department.value: required",
        ),
        (
            _with("dimensions.sources.Department", {"source": "constant", "value": "1", "field": "x"}),
            "mapping.yaml: dimensions.sources.Department.field: unknown key",
        ),
        (
            _with("dimensions.sources.Department", {"source": "crystal_ball"}),
            "mapping.yaml: dimensions.sources.Department: unknown source 'crystal_ball'; use one of deal_field, org_field, pipeline, owner, constant",
        ),
        (
            _with("dimensions.sources.Department", {"values": {1: "a"}}),
            "mapping.yaml: dimensions.sources.Department: required (source: one of deal_field, org_field, pipeline, owner, constant)",
        ),
        (
            _with("dimensions.sources.Region", {"source": "constant", "value": "EU"}),
            "mapping.yaml: dimensions.sources.Region: not in dimensions.order",
        ),
        (
            _with("dimensions.order", ["BusinessUnit", "CostCenter", "Department", "CostCenter"]),
            "mapping.yaml: dimensions.order: each dimension may appear once",
        ),
        (
            _with("dimensions.sources.Department", {"source": "constant", "value": "02-2"}),
            "mapping.yaml: dimensions.sources.Department.value: contains the delimiter '-'",
        ),
        (
            _with("dimensions.sources.BusinessUnit", {"source": "pipeline", "values": {1: "0-1"}}),
            "mapping.yaml: dimensions.sources.BusinessUnit.values.1: contains the delimiter '-'",
        ),
        (
            _with("dimensions.sources.CostCenter", {"source": "deal_field", "field": "Cost center", "default": "a-b"}),
            "mapping.yaml: dimensions.sources.CostCenter.default: contains the delimiter '-'",
        ),
        (
            _with("lines.amount_discount", "per_order"),
            "mapping.yaml: lines.amount_discount: 'per_order' is not allowed; input should be 'per_line' or 'per_unit'",
        ),
        (
            _with("lines.discount_decimals", 20),
            "mapping.yaml: lines.discount_decimals: input should be less than or equal to 16",
        ),
        (
            _with("lines.skip_disabled", "maybe"),
            "mapping.yaml: lines.skip_disabled: input should be a valid boolean, unable to interpret input",
        ),
        (
            _with("pipedrive_fields", {}),
            "mapping.yaml: customer.match_rules: 'account_field' needs pipedrive_fields.org_customer_account (the field name)",
        ),
        (
            _with("pipedrive_fields", {"org_customer_account": "D365 account"}),
            "mapping.yaml: order.write_back_order_number: needs pipedrive_fields.deal_order_number (the field name)",
        ),
    ],
)
def test_each_config_error_names_its_key(data: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(data)


def test_all_problems_are_reported_at_once() -> None:
    data = mapping_data()
    data["legal_entity"]["default"] = "x" * 9
    data["customer"]["defaults"]["currency"] = "dollars"
    data["dimensions"]["sources"]["CostCenter"] = {"source": "deal_field"}
    lines = errors_of(data)
    assert [line.split(":")[1].strip() for line in lines] == [
        "legal_entity.default",
        "customer.defaults.currency",
        "dimensions.sources.CostCenter.field",
    ]


def test_top_level_must_be_a_mapping() -> None:
    assert errors_of(["a"]) == ["mapping.yaml: the top level must be a mapping of keys, got list"]


def test_blank_dimension_in_order_without_source_is_allowed() -> None:
    data = mapping_data()
    data["dimensions"]["order"].append("Project")
    assert parse_mapping(data).dimensions.order[-1] == "Project"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("site: 1", 'mapping.yaml: lines.site: 1 is a number; write it in quotes (e.g. "1") so it is kept exactly'),
        ("warehouse: 011", "mapping.yaml: lines.warehouse: 9 is a number; write it in quotes"),  # YAML octal!
    ],
)
def test_unquoted_numbers_for_text_codes_are_refused_not_converted(yaml_text: str, expected: str) -> None:
    data = mapping_data()
    data["lines"] = yaml.safe_load(yaml_text)
    assert any(line.startswith(expected) for line in errors_of(data))


def test_errors_in_per_entity_defaults_and_country_map_name_their_keys() -> None:
    data = mapping_data()
    data["customer"]["defaults_by_legal_entity"] = {"toolong": {"currency": "EUR"}, "demf": {"colour": "x"}}
    data["customer"]["country_map"] = {"Germany": ""}
    lines = errors_of(data)
    assert (
        "mapping.yaml: customer.defaults_by_legal_entity.toolong: key 'toolong' has the wrong form "
        "(a D365 company id of 1-4 letters or digits, e.g. usmf)" in lines
    )
    assert "mapping.yaml: customer.defaults_by_legal_entity.demf.colour: unknown key" in lines
    assert "mapping.yaml: customer.country_map.Germany: string should have at least 2 characters" in lines


def test_defaults_for_applies_only_the_overrides_of_that_company() -> None:
    data = mapping_data()
    data["customer"]["defaults_by_legal_entity"] = {"DEMF": {"currency": "eur", "customer_group": "10"}}
    customer = parse_mapping(data).customer
    assert customer.defaults_for("demf").model_dump() == {
        "customer_group": "10",
        "currency": "EUR",
        "payment_terms": "Net30",
        "language": "en-us",
        "country": "USA",
    }
    assert customer.defaults_for("usmf") == customer.defaults_for(None) == customer.defaults


def test_event_ids_default_to_todays_and_come_from_the_mapping() -> None:
    default = parse_mapping(mapping_data()).events
    assert default.route("CustomerChangedBusinessEvent") == ("customer", "CustomerAccount")
    assert default.route("ReleasedProductChangedBusinessEvent") == ("product", "ItemNumber")
    assert default.route("BusinessEventsTestEndpointContract") is None
    custom = parse_mapping(
        mapping_data(events={"customer_changed": {"ids": ["FFYCustomerChangedBusinessEvent"], "key_field": "Account"}})
    ).events
    assert custom.route("FFYCustomerChangedBusinessEvent") == ("customer", "Account")
    assert custom.route("CustomerChangedBusinessEvent") is None  # replaced, not added
    assert custom.route("ReleasedProductChangedBusinessEvent") == ("product", "ItemNumber")  # still the default


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            {"customer_changed": {"ids": [], "key_field": "Account"}},
            "events.customer_changed.ids: list should have at least 1 item",
        ),
        ({"customer_changed": {"ids": ["X"]}}, "events.customer_changed.key_field: required"),
        (
            {"product_changed": {"ids": ["X"], "key_field": "Item Number"}},
            "events.product_changed.key_field: 'Item Number' has the wrong form",
        ),
        (
            {
                "customer_changed": {"ids": ["Same"], "key_field": "A"},
                "product_changed": {"ids": ["Same"], "key_field": "B"},
            },
            "events: event id 'Same' is in both customer_changed.ids and product_changed.ids; it can mean one",
        ),
    ],
)
def test_bad_event_configuration_names_the_key(events: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mapping(mapping_data(events=events), label="mapping.yaml")
    assert any(line.startswith(f"mapping.yaml: {expected}") for line in info.value.detail), info.value.detail
