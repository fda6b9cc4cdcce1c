"""Resolved custom field values -> one text value; which field names a mapping needs resolved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connector.mapping.fields import FieldValueError, ResolvedFields, configured_fields, field_text
from tests.mapping.factories import cfg


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ([], None),
        (" text ", "text"),
        (42, "42"),
        (12.0, "12"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (Decimal("2.50"), "2.50"),
        (True, "true"),
        (["Only"], "Only"),
        ({"id": 3, "label": "Gold"}, "Gold"),
        ({"value": 500, "currency": "EUR"}, "500"),
        ({"value": None, "currency": "EUR"}, None),
    ],
)
def test_field_text(value: Any, expected: str | None) -> None:
    assert field_text(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["A", "B"], "has several options selected (A, B); select one"),
        (
            {"value": "Main St", "route": "Main"},
            "holds a structured value (address, range or time); use a text or option field",
        ),
        (object(), "holds a object value; use a text or option field"),
    ],
)
def test_field_text_refuses_values_that_are_not_one_text(value: Any, message: str) -> None:
    with pytest.raises(FieldValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        field_text(value)


def test_lookup_by_name_is_case_and_space_insensitive_but_exact_first() -> None:
    fields = ResolvedFields(deal={"Cost Center": "a", "cost center": "b"}, organization={"D365  account": "US-1"})
    assert fields.deal_value("cost center") == "b"
    assert fields.deal_value("COST center") == "a"
    assert fields.org_value("d365 account") == "US-1"
    assert fields.org_value("missing") is None


def test_configured_fields_lists_each_name_once_per_entity() -> None:
    config = cfg(
        dimensions={
            "order": ["A", "B", "C", "D"],
            "sources": {
                "A": {"source": "deal_field", "field": "Cost center"},
                "B": {"source": "org_field", "field": "Region"},
                "C": {"source": "deal_field", "field": "Cost center"},
                "D": {"source": "org_field", "field": "D365 account"},
            },
        }
    )
    wanted = configured_fields(config)
    assert wanted.deal == ("D365 order", "Cost center")
    assert wanted.organization == ("D365 account", "Region")
