"""Small builders for mapping tests: a valid config and Pipedrive records with overridable fields."""

from __future__ import annotations

import copy
from typing import Any

from connector.mapping.config import MappingConfig, parse_mapping
from connector.pipedrive.models import Deal, DealProduct, Organization, Person, Product

BASE_MAPPING: dict[str, Any] = {
    "legal_entity": {"default": "usmf", "by_pipeline": {2: "demf"}},
    "customer": {
        "match_rules": ["account_field", "name_country", "name"],
        "defaults": {
            "customer_group": "30",
            "currency": "USD",
            "payment_terms": "Net30",
            "language": "en-us",
            "country": "USA",
        },
        "country_map": {"United States": "USA", "Germany": "DEU"},
    },
    "pipedrive_fields": {"org_customer_account": "D365 account", "deal_order_number": "D365 order"},
    "order": {"reference_template": "PD-{deal_id}", "write_back_order_number": True},
    "lines": {"site": "1", "warehouse": "11"},
    "dimensions": {
        "order": ["BusinessUnit", "CostCenter", "Department"],
        "delimiter": "-",
        "sources": {
            "BusinessUnit": {"source": "pipeline", "values": {1: "001", 2: "002"}},
            "CostCenter": {"source": "deal_field", "field": "Cost center", "values": {"North": "011", "South": "012"}},
            "Department": {"source": "owner", "values": {7: "022"}},
        },
    },
}


def mapping_data(**overrides: Any) -> dict[str, Any]:
    """A deep copy of BASE_MAPPING with top-level sections replaced or merged (dict values merge)."""
    data = copy.deepcopy(BASE_MAPPING)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def cfg(**overrides: Any) -> MappingConfig:
    return parse_mapping(mapping_data(**overrides), label="test.yaml")


def deal(**fields: Any) -> Deal:
    base: dict[str, Any] = {
        "id": 123,
        "title": "Pumps for Contoso",
        "status": "won",
        "currency": "USD",
        "org_id": 5,
        "person_id": 9,
        "owner_id": 7,
        "pipeline_id": 1,
    }
    return Deal.model_validate({**base, **fields})


def line(product_id: int = 1, **fields: Any) -> DealProduct:
    base: dict[str, Any] = {
        "id": 1000 + product_id,
        "deal_id": 123,
        "product_id": product_id,
        "name": f"Product {product_id}",
        "quantity": 1,
        "item_price": 10,
        "currency": "USD",
    }
    return DealProduct.model_validate({**base, **fields})


def product(product_id: int = 1, code: str | None = "ITEM-1", **fields: Any) -> Product:
    return Product.model_validate({"id": product_id, "name": f"Product {product_id}", "code": code, **fields})


def org(**fields: Any) -> Organization:
    base: dict[str, Any] = {
        "id": 5,
        "name": "Contoso Pumps GmbH",
        "address": {
            "value": "Hauptstr. 5, 10115 Berlin, Germany",
            "country": "Germany",
            "locality": "Berlin",
            "postal_code": "10115",
            "route": "Hauptstr.",
            "street_number": "5",
        },
    }
    return Organization.model_validate({**base, **fields})


def person(**fields: Any) -> Person:
    base: dict[str, Any] = {
        "id": 9,
        "name": "Anna Schmidt",
        "emails": [
            {"value": "home@example.com", "primary": False},
            {"value": "anna@contoso.example", "primary": True},
        ],
        "phones": [{"value": "+49 30 1234", "primary": True}],
    }
    return Person.model_validate({**base, **fields})
