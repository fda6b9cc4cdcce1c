"""resolve_dimensions: every source kind, blanks, defaults, required, delimiter safety, error naming."""

from __future__ import annotations

from typing import Any

import pytest

from connector.mapping.dimensions import resolve_dimensions
from connector.mapping.errors import MappingError
from connector.mapping.fields import ResolvedFields
from tests.mapping.factories import cfg, deal, mapping_data, org

FIELDS = ResolvedFields(deal={"Cost center": "North"}, organization={"Region": "EMEA"})


def dims(sources: dict[str, Any], order: list[str] | None = None, delimiter: str = "-", **extra: Any) -> Any:
    data = mapping_data()
    data["dimensions"] = {"order": order or list(sources), "delimiter": delimiter, "sources": sources, **extra}
    from connector.mapping.config import parse_mapping

    return parse_mapping(data)


def resolve(config: Any, fields: ResolvedFields = FIELDS, with_org: bool = True, **deal_fields: Any) -> str:
    return resolve_dimensions(deal(**deal_fields), org() if with_org else None, config, fields)


def failure(config: Any, fields: ResolvedFields = FIELDS, with_org: bool = True, **deal_fields: Any) -> list[str]:
    with pytest.raises(MappingError) as info:
        resolve(config, fields, with_org, **deal_fields)
    return info.value.problems


def test_base_config_resolves_pipeline_deal_field_and_owner_in_format_order() -> None:
    assert resolve(cfg()) == "001-011-022"
    assert resolve(cfg(), pipeline_id=2, owner_id=7) == "002-011-022"


@pytest.mark.parametrize(
    ("source", "fields", "deal_fields", "expected"),
    [
        ({"source": "constant", "value": "X1"}, FIELDS, {}, "X1"),
        ({"source": "pipeline", "values": {1: "P1", 2: "P2"}}, FIELDS, {"pipeline_id": 2}, "P2"),
        ({"source": "owner", "values": {7: "O7"}}, FIELDS, {}, "O7"),
        ({"source": "deal_field", "field": "Cost center"}, FIELDS, {}, "North"),  # label used as is
        ({"source": "deal_field", "field": "Cost center", "values": {"North": "011"}}, FIELDS, {}, "011"),
        ({"source": "deal_field", "field": "cost  CENTER"}, FIELDS, {}, "North"),  # name compare like Pipedrive
        ({"source": "org_field", "field": "Region"}, FIELDS, {}, "EMEA"),
        ({"source": "org_field", "field": "Region", "values": {"EMEA": "E1"}}, FIELDS, {}, "E1"),
        ({"source": "deal_field", "field": "Number"}, ResolvedFields(deal={"Number": 12.0}), {}, "12"),
        ({"source": "deal_field", "field": "Number"}, ResolvedFields(deal={"Number": 4711}), {}, "4711"),
        ({"source": "deal_field", "field": "Opt"}, ResolvedFields(deal={"Opt": {"id": 3, "label": "L3"}}), {}, "L3"),
        ({"source": "deal_field", "field": "Set"}, ResolvedFields(deal={"Set": ["Only"]}), {}, "Only"),
        (
            {"source": "deal_field", "field": "Budget"},
            ResolvedFields(deal={"Budget": {"value": 500, "currency": "EUR"}}),
            {},
            "500",
        ),
        ({"source": "deal_field", "field": "Code"}, ResolvedFields(deal={"Code": "  C9 "}), {}, "C9"),
    ],
)
def test_each_source_kind(
    source: dict[str, Any], fields: ResolvedFields, deal_fields: dict[str, Any], expected: str
) -> None:
    assert resolve(dims({"Dim": source}), fields, **deal_fields) == expected


def test_blank_segments_keep_their_place() -> None:
    config = dims(
        {"A": {"source": "constant", "value": "1"}, "C": {"source": "deal_field", "field": "Empty"}},
        order=["A", "B", "C", "D"],
    )
    assert resolve(config, ResolvedFields(deal={"Empty": ""})) == "1---"
    config = dims({"C": {"source": "constant", "value": "3"}}, order=["A", "B", "C"])
    assert resolve(config) == "--3"


def test_all_blank_gives_empty_string_and_no_order_gives_empty_string() -> None:
    config = dims({"A": {"source": "deal_field", "field": "Missing"}, "B": {"source": "constant", "value": ""}})
    assert resolve(config, ResolvedFields()) == ""
    assert resolve(dims({}, order=[])) == ""


@pytest.mark.parametrize("delimiter", ["-", ".", "_", "|"])
def test_configured_delimiter(delimiter: str) -> None:
    config = dims(
        {"A": {"source": "constant", "value": "1"}, "B": {"source": "constant", "value": "2"}},
        order=["A", "X", "B"],
        delimiter=delimiter,
    )
    assert resolve(config) == f"1{delimiter}{delimiter}2"


def test_value_containing_the_delimiter_is_refused() -> None:
    config = dims({"CostCenter": {"source": "deal_field", "field": "Cost center"}})
    assert failure(config, ResolvedFields(deal={"Cost center": "01-2"})) == [
        "deal 123: dimension CostCenter (source deal_field 'Cost center'): value '01-2' contains the dimension "
        "delimiter '-'; D365 would split it into two segments"
    ]
    # another delimiter makes the same value fine
    dotted = dims({"CostCenter": {"source": "deal_field", "field": "Cost center"}}, delimiter=".")
    assert resolve(dotted, ResolvedFields(deal={"Cost center": "01-2"})) == "01-2"


def test_defaults_and_required() -> None:
    empty = ResolvedFields()
    with_default = dims({"CC": {"source": "deal_field", "field": "Cost center", "default": "099"}})
    assert resolve(with_default, empty) == "099"
    required = dims({"CC": {"source": "deal_field", "field": "Cost center", "required": True}})
    assert failure(required, empty) == [
        "deal 123: dimension CC (source deal_field 'Cost center'): deal field 'Cost center' is empty; "
        "fill it in Pipedrive (this dimension is required)"
    ]
    org_required = dims({"R": {"source": "org_field", "field": "Region", "required": True}})
    assert failure(org_required, with_org=False) == [
        "deal 123: dimension R (source org_field 'Region'): organization field 'Region' is empty; "
        "fill it in Pipedrive (this dimension is required)"
    ]
    pipe_required = dims({"BU": {"source": "pipeline", "values": {1: "001"}, "required": True}})
    assert failure(pipe_required, pipeline_id=None) == [
        "deal 123: dimension BU (source pipeline): the deal's pipeline is empty; fill it in Pipedrive "
        "(this dimension is required)"
    ]


def test_deal_without_org_gives_blank_org_dimension() -> None:
    config = dims({"R": {"source": "org_field", "field": "Region"}, "K": {"source": "constant", "value": "k"}})
    assert resolve(config, with_org=False) == "-k"


@pytest.mark.parametrize(
    ("source", "fields", "deal_fields", "expected"),
    [
        (
            {"source": "pipeline", "values": {1: "001"}},
            FIELDS,
            {"pipeline_id": 9},
            "deal 123: dimension Dim (source pipeline): pipeline 9 has no value; add it under "
            "dimensions.sources.Dim.values in the mapping file",
        ),
        (
            {"source": "owner", "values": {1: "001"}},
            FIELDS,
            {"owner_id": 8},
            "deal 123: dimension Dim (source owner): owner 8 has no value; add it under "
            "dimensions.sources.Dim.values in the mapping file",
        ),
        (
            {"source": "deal_field", "field": "Cost center", "values": {"South": "022"}},
            FIELDS,
            {},
            "deal 123: dimension Dim (source deal_field 'Cost center'): 'North' has no value; add it under "
            "dimensions.sources.Dim.values in the mapping file (known: 'South')",
        ),
        (
            {"source": "deal_field", "field": "Tags"},
            ResolvedFields(deal={"Tags": ["A", "B"]}),
            {},
            "deal 123: dimension Dim (source deal_field 'Tags'): deal field 'Tags' has several options selected "
            "(A, B); select one",
        ),
        (
            {"source": "org_field", "field": "Where"},
            ResolvedFields(organization={"Where": {"value": "Main St 1", "locality": "X"}}),
            {},
            "deal 123: dimension Dim (source org_field 'Where'): organization field 'Where' holds a structured "
            "value (address, range or time); use a text or option field",
        ),
    ],
)
def test_unmappable_values_name_dimension_and_source(
    source: dict[str, Any], fields: ResolvedFields, deal_fields: dict[str, Any], expected: str
) -> None:
    assert failure(dims({"Dim": source}), fields, **deal_fields) == [expected]


def test_map_default_covers_unlisted_keys() -> None:
    config = dims({"Dept": {"source": "owner", "values": {1: "022"}, "default": "024"}})
    assert resolve(config, owner_id=55) == "024"


def test_all_dimension_problems_are_reported_together() -> None:
    config = dims(
        {
            "A": {"source": "pipeline", "values": {5: "x"}},
            "B": {"source": "owner", "values": {5: "y"}},
            "C": {"source": "constant", "value": "ok"},
        }
    )
    found = failure(config)
    assert [p.split(":")[1].strip() for p in found] == ["dimension A (source pipeline)", "dimension B (source owner)"]
