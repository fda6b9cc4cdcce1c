"""Pydantic models for everything that enters the simulator from outside: seeds and control bodies.

Seeds forbid unknown keys so a typo in a test's data fails loudly instead of being ignored.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Entity = Literal["deal", "organization", "person", "product"]
FIELD_CODE = re.compile(r"^[0-9a-f]{40}$")
CustomFieldType = Literal[
    "varchar",
    "text",
    "varchar_auto",
    "double",
    "int",
    "enum",
    "set",
    "monetary",
    "date",
    "phone",
    "user",
    "org",
    "people",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedOption(_Strict):
    id: int
    label: str


class SeedField(_Strict):
    field_name: str
    field_type: CustomFieldType
    field_code: str | None = None
    options: list[SeedOption] | None = None

    @field_validator("field_code")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        if value is not None and not FIELD_CODE.match(value):
            raise ValueError("custom field codes are 40 lowercase hex characters")
        return value


class SeedUser(_Strict):
    id: int
    name: str
    email: str
    company_id: int = 7001
    company_name: str = "Sandbox Distribution Ltd"
    company_domain: str = "sandbox-distribution"
    default_currency: str = "EUR"
    locale: str = "en_US"
    timezone_name: str = "Europe/Helsinki"


class SeedStage(_Strict):
    id: int
    name: str


class SeedPipeline(_Strict):
    id: int
    name: str
    stages: list[SeedStage]


class SeedCurrency(_Strict):
    code: str
    name: str
    symbol: str
    decimal_points: int = 2


class SeedOAuthClient(_Strict):
    client_id: str
    client_secret: str
    redirect_uri: str = "http://127.0.0.1/callback"
    scope: str = "base,deals:full,contacts:full,products:full,admin"  # docs/admin-pipedrive.md, section 1b


class SeedAddress(_Strict):
    value: str
    country: str | None = None
    locality: str | None = None
    postal_code: str | None = None
    route: str | None = None
    street_number: str | None = None
    admin_area_level_1: str | None = None
    admin_area_level_2: str | None = None


class SeedOrganization(_Strict):
    id: int | None = None
    name: str
    owner_id: int | None = None
    address: SeedAddress | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class SeedContact(_Strict):
    value: str
    primary: bool = False
    label: str = "work"


class SeedPerson(_Strict):
    id: int | None = None
    name: str
    org_id: int | None = None
    owner_id: int | None = None
    emails: list[SeedContact] = Field(default_factory=list)
    phones: list[SeedContact] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class SeedPrice(_Strict):
    price: float
    currency: str
    cost: float = 0
    direct_cost: float = 0
    notes: str = ""


class SeedProduct(_Strict):
    id: int | None = None
    name: str
    code: str | None = None
    description: str | None = None
    unit: str = ""
    tax: float = 0
    category: str | None = None
    prices: list[SeedPrice] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class SeedDealProduct(_Strict):
    product_id: int
    item_price: float
    quantity: float
    discount: float = 0
    discount_type: Literal["percentage", "amount"] = "percentage"
    tax: float = 0
    tax_method: Literal["exclusive", "inclusive", "none"] = "inclusive"
    comments: str = ""


class SeedDeal(_Strict):
    id: int | None = None
    title: str
    org_id: int | None = None
    person_id: int | None = None
    owner_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    value: float | None = None
    currency: str | None = None
    status: Literal["open", "won", "lost"] = "open"
    expected_close_date: str | None = None
    won_time: str | None = None
    update_time: str | None = None
    add_time: str | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    products: list[SeedDealProduct] = Field(default_factory=list)


class Seed(_Strict):
    """A whole data set; every list is optional so a test can seed just what it needs."""

    api_tokens: list[str] = Field(default_factory=list)
    oauth_clients: list[SeedOAuthClient] = Field(default_factory=list)
    users: list[SeedUser] = Field(default_factory=list)
    pipelines: list[SeedPipeline] = Field(default_factory=list)
    currencies: list[SeedCurrency] = Field(default_factory=list)
    fields: dict[Entity, list[SeedField]] = Field(default_factory=dict)
    organizations: list[SeedOrganization] = Field(default_factory=list)
    persons: list[SeedPerson] = Field(default_factory=list)
    products: list[SeedProduct] = Field(default_factory=list)
    deals: list[SeedDeal] = Field(default_factory=list)


class FaultSpec(_Strict):
    """The next `times` requests whose path matches `path` (fnmatch glob) get this answer."""

    path: str
    method: str | None = None
    times: int = Field(1, ge=1)
    status: int | None = Field(None, ge=100, le=599, description="None: only add latency, then serve normally.")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    latency: float = Field(0.0, ge=0)
    after: bool = Field(
        False, description="True: serve the request first (a write is saved), then answer with `status`/`body`."
    )


class WebhookFaultSpec(_Strict):
    """The next `times` deliveries are dropped (lost, as when a webhook is banned) or sent twice."""

    mode: Literal["drop", "duplicate"]
    times: int = Field(1, ge=1)


class OAuthCodeRequest(_Strict):
    client_id: str
    scope: str | None = None
