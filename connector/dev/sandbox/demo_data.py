"""A realistic industrial-distributor data set, consistent across both simulators and
`config/demo-mapping.yaml`: products whose codes are D365 item numbers in both companies,
organizations that carry their D365 account, that match by name and country, or that are new,
and open deals across two pipelines (US sales -> usmf in USD, DACH sales -> demf in EUR).

Deterministic (no randomness), so a demo run and its report can be compared with the last one.
"""

from __future__ import annotations

from typing import Any

from connector.dev.sandbox.d365.seed import default_seed as d365_default_seed

ACCOUNT_FIELD = "cf99acb193e13ea55589931218b27e54c1affacd"  # organization "D365 customer account"
ORDER_FIELD = "c165bc61951e95e290ebcf2f7ee70400f367a9e4"  # deal "D365 sales order"
COST_CENTER_FIELD = "a3c1f0e2b4d6c8e0f1a2b3c4d5e6f7a8b9c0d1e2"  # deal "Cost center" (enum)
COST_CENTERS = {"North": 61, "South": 62, "Export": 63}

# (item number, name, unit, USD price, EUR price)
PRODUCTS: list[tuple[str, str, str, float, float]] = [
    ("HP-1000", "Hydraulic pump HP-1000", "ea", 1249.0, 1150.0),
    ("HP-2000", "Hydraulic pump HP-2000, high pressure", "ea", 2380.0, 2190.0),
    ("VB-050", "Ball valve DN50 stainless", "ea", 189.5, 175.0),
    ("VB-080", "Ball valve DN80 stainless", "ea", 264.9, 245.0),
    ("HS-12", "Hydraulic hose 1/2in, per metre", "m", 7.35, 6.8),
    ("FT-200", "Return line filter FT-200", "ea", 86.0, 79.0),
    ("SEAL-KIT", "Seal kit for HP series", "set", 42.75, 39.5),
    ("MTR-7K5", "Electric motor 7.5 kW IE3", "ea", 1890.0, 1745.0),
    ("CPL-40", "Jaw coupling 40 mm", "ea", 58.2, 53.9),
    ("SRV-HR", "Field service technician, per hour", "hr", 145.0, 132.0),
]
# A product sellers quote but nobody gave a D365 item number yet: the demo's "unmapped product".
UNMAPPED_PRODUCT_ID = 11
UNMAPPED_CODE_FIX = "HP-1000-C"


def pipedrive_seed() -> dict[str, Any]:
    products = [
        {
            "id": i,
            "name": name,
            "code": code,
            "unit": unit,
            "category": "Hydraulics",
            "prices": [{"price": usd, "currency": "USD"}, {"price": eur, "currency": "EUR"}],
        }
        for i, (code, name, unit, usd, eur) in enumerate(PRODUCTS, start=1)
    ]
    products.append(
        {
            "id": UNMAPPED_PRODUCT_ID,
            "name": "Hydraulic pump, customer-specific",
            "unit": "ea",
            "category": "Hydraulics",
            "prices": [{"price": 3100, "currency": "USD"}],
        }
    )
    organizations = [
        # Carries its D365 account already: an exact match, no lookup.
        _org(1, "Contoso Retail San Diego", "United States", "San Diego", account="US-001"),
        # Matches an existing D365 customer by normalised name + country (note the quote and ampersand).
        _org(2, "O'Brien & Sons", "United States", "Boston"),
        _org(3, "Fabrikam Deutschland GmbH", "Germany", "Berlin"),
        # New to D365: created with the configured group, then written back.
        _org(4, "Northwind Fluid Power Inc.", "United States", "Chicago"),
        _org(5, "Tailspin Hydraulik GmbH", "Germany", "Stuttgart"),
        _org(6, "Adventure Works Mining LLC", "United States", "Denver"),
        _org(7, "Wingtip Anlagenbau AG", "Austria", "Linz"),
    ]
    persons = [
        _person(1, "Maria Campbell", 1, "maria.campbell@contoso.example", "+1 619 555 0101"),
        _person(2, "Sean O'Brien", 2, "sean@obrien-sons.example", "+1 617 555 0199"),
        _person(3, "Jonas Weber", 3, "j.weber@fabrikam.example", "+49 30 5550 1234"),
        _person(4, "Priya Raman", 4, "priya.raman@northwind.example", "+1 312 555 0142"),
        _person(5, "Lena Vogel", 5, "lena.vogel@tailspin.example", "+49 711 5550 777"),
        _person(6, "Tom Baker", 6, "tbaker@adventure-works.example", "+1 303 555 0118"),
        _person(7, "Eva Gruber", 7, "eva.gruber@wingtip.example", "+43 732 555 0100"),
    ]
    deals = [
        _deal(101, "Contoso pump replacement", 1, 1, 1, "USD", "North", [(1, 2, 0, "percentage"), (7, 4, 0, None)]),
        _deal(102, "O'Brien valve retrofit", 2, 2, 1, "USD", "South", [(3, 12, 5, "percentage"), (4, 6, 0, None)]),
        _deal(103, "Fabrikam Wartungsvertrag", 3, 3, 2, "EUR", "Export", [(10, 16, 0, None), (6, 10, 40, "amount")]),
        _deal(
            104,
            "Northwind line build-out",
            4,
            4,
            1,
            "USD",
            "North",
            [(2, 1, 0, None), (8, 2, 7.5, "percentage"), (5, 150, 0, None), (9, 4, 0, None), (6, 6, 0, None)],
        ),
        _deal(105, "Tailspin Filterpaket", 5, 5, 2, "EUR", "South", [(6, 24, 10, "percentage"), (5, 80, 0, None)]),
        _deal(106, "Adventure Works spares", 6, 6, 1, "USD", "South", [(7, 10, 0, None), (3, 2, 0, None)]),
        _deal(107, "Wingtip Pumpenstation", 7, 7, 2, "EUR", "Export", [(1, 3, 150, "amount"), (9, 3, 0, None)]),
        _deal(
            108, "Contoso custom pump", 1, 1, 1, "USD", "North", [(UNMAPPED_PRODUCT_ID, 1, 0, None), (7, 1, 0, None)]
        ),
        _deal(109, "Northwind hoses", 4, 4, 1, "USD", "North", [(5, 300, 2.5, "percentage")]),
        _deal(110, "O'Brien service visit", 2, 2, 1, "USD", "South", [(10, 6, 0, None)]),
    ]
    return {
        "api_tokens": ["sandbox-api-token-0123456789abcdef"],
        "oauth_clients": [
            {
                "client_id": "sandbox-client",
                "client_secret": "sandbox-client-secret",
                "redirect_uri": "http://127.0.0.1/cb",
            }
        ],
        "users": [
            {"id": 1, "name": "Dana Seller", "email": "dana@distributor.example"},
            {"id": 2, "name": "Max Verkauf", "email": "max@distributor.example"},
        ],
        "pipelines": [
            {"id": 1, "name": "US sales", "stages": [{"id": 1, "name": "Quote"}, {"id": 2, "name": "Negotiation"}]},
            {"id": 2, "name": "DACH sales", "stages": [{"id": 3, "name": "Angebot"}, {"id": 4, "name": "Verhandlung"}]},
        ],
        "currencies": [
            {"code": "USD", "name": "US Dollar", "symbol": "$"},
            {"code": "EUR", "name": "Euro", "symbol": "€"},
        ],
        "fields": {
            "organization": [
                {"field_code": ACCOUNT_FIELD, "field_name": "D365 customer account", "field_type": "varchar"}
            ],
            "deal": [
                {"field_code": ORDER_FIELD, "field_name": "D365 sales order", "field_type": "varchar"},
                {
                    "field_code": COST_CENTER_FIELD,
                    "field_name": "Cost center",
                    "field_type": "enum",
                    "options": [{"id": i, "label": label} for label, i in COST_CENTERS.items()],
                },
            ],
            "product": [],
        },
        "organizations": organizations,
        "persons": persons,
        "products": products,
        "deals": deals,
    }


def d365_seed() -> dict[str, Any]:
    seed = d365_default_seed()
    seed["released_products"] = [
        {
            "dataAreaId": company,
            "ItemNumber": code,
            "ProductName": name,
            "SearchName": code,
            "SalesUnitSymbol": unit,
            "InventoryUnitSymbol": unit,
            "SalesPrice": usd if company == "usmf" else eur,
            "ItemModelGroupId": "STD",
        }
        for company in ("usmf", "demf")
        for code, name, unit, usd, eur in [
            *PRODUCTS,
            (UNMAPPED_CODE_FIX, "Hydraulic pump, customer-specific", "ea", 3100.0, 2850.0),
        ]
    ]
    units = set(seed.get("units") or ["pcs", "ea", "hr", "kg"])
    seed["units"] = sorted(units | {"m", "set", "ea", "hr"})
    return seed


def _org(org_id: int, name: str, country: str, city: str, *, account: str | None = None) -> dict[str, Any]:
    org: dict[str, Any] = {
        "id": org_id,
        "name": name,
        "owner_id": 1,
        "address": {"value": f"{city}, {country}", "country": country, "locality": city},
    }
    if account:
        org["custom_fields"] = {ACCOUNT_FIELD: account}
    return org


def _person(person_id: int, name: str, org_id: int, email: str, phone: str) -> dict[str, Any]:
    return {
        "id": person_id,
        "name": name,
        "org_id": org_id,
        "emails": [{"value": email, "primary": True, "label": "work"}],
        "phones": [{"value": phone, "primary": True, "label": "work"}],
    }


def _deal(
    deal_id: int,
    title: str,
    org_id: int,
    person_id: int,
    pipeline_id: int,
    currency: str,
    cost_center: str,
    lines: list[tuple[int, float, float, str | None]],
) -> dict[str, Any]:
    products = []
    for product_id, quantity, discount, discount_type in lines:
        _, _, _, usd, eur = PRODUCTS[product_id - 1] if product_id <= len(PRODUCTS) else ("", "", "", 3100.0, 0.0)
        line: dict[str, Any] = {
            "product_id": product_id,
            "item_price": usd if currency == "USD" else eur,
            "quantity": quantity,
        }
        if discount:
            line["discount"] = discount
            line["discount_type"] = discount_type or "percentage"
        products.append(line)
    return {
        "id": deal_id,
        "title": title,
        "org_id": org_id,
        "person_id": person_id,
        "pipeline_id": pipeline_id,
        "stage_id": 2 if pipeline_id == 1 else 4,
        "owner_id": 1 if pipeline_id == 1 else 2,
        "currency": currency,
        "status": "open",
        "custom_fields": {COST_CENTER_FIELD: COST_CENTERS[cost_center]},
        "products": products,
    }
