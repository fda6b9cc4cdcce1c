"""Typed Pipedrive records (API v2 shapes) and the one webhook event model.

Records tolerate fields we do not use (Pipedrive adds fields often) but reject a wrong type in a
field we do use, with pydantic's error naming the field. Custom fields stay as raw 40-character
hash keys in `custom_fields`; `connector.pipedrive.fields` resolves them to configured names.
Sources: docs/api-facts.md, Pipedrive §6-§8 (Pipedrive's OpenAPI v2 file).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

DealStatus = Literal["open", "won", "lost", "deleted"]
WebhookAction = Literal["create", "change", "delete"]


def _utc(value: datetime | None) -> datetime | None:
    """v1 timestamps are naive 'YYYY-MM-DD HH:MM:SS' in UTC; make every timestamp aware."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class PipedriveModel(BaseModel):
    """Base: keep unknown fields (extra='allow'), validate the ones we declare."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def timestamps_in_utc(cls, value: Any) -> Any:
        return _utc(value) if isinstance(value, datetime) else value

    @model_validator(mode="before")
    @classmethod
    def null_collections_empty(cls, data: Any) -> Any:
        """Pipedrive sends null for empty lists/objects (custom_fields, emails, prices...): use empty ones."""
        if not isinstance(data, dict):
            return data
        nulls = [
            (name, info.default_factory)
            for name, info in cls.model_fields.items()
            if info.default_factory in (dict, list) and name in data and data[name] is None
        ]
        if not nulls:
            return data
        return {**data, **{name: factory() for name, factory in nulls}}


class Deal(PipedriveModel):
    id: int
    title: str = ""
    status: DealStatus
    value: float | None = None
    currency: str | None = None
    org_id: int | None = None
    person_id: int | None = None
    owner_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    add_time: datetime | None = None
    update_time: datetime | None = None
    won_time: datetime | None = None
    close_time: datetime | None = None
    expected_close_date: date | None = None
    is_deleted: StrictBool = False
    is_archived: StrictBool = False
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class DealProduct(PipedriveModel):
    """A product line on a deal (`id` is the product_attachment_id)."""

    id: int
    deal_id: int
    product_id: int
    product_variation_id: int | None = None
    name: str = ""
    quantity: float
    item_price: float
    sum: float | None = None
    currency: str | None = None
    discount: float = 0
    discount_type: Literal["percentage", "amount"] = "percentage"
    tax: float = 0
    tax_method: Literal["exclusive", "inclusive", "none"] | None = None
    billing_frequency: str | None = None  # one-time, annually, semi-annually, quarterly, monthly, weekly
    billing_frequency_cycles: int | None = None
    is_enabled: StrictBool = True
    order_nr: int | None = None
    comments: str | None = ""


class Address(PipedriveModel):
    value: str | None = None
    country: str | None = None
    locality: str | None = None
    postal_code: str | None = None
    route: str | None = None
    street_number: str | None = None
    admin_area_level_1: str | None = None  # state / region, e.g. "Harju maakond"
    admin_area_level_2: str | None = None  # county
    formatted_address: str | None = None


class Organization(PipedriveModel):
    id: int
    name: str
    owner_id: int | None = None
    address: Address | None = None
    update_time: datetime | None = None
    is_deleted: StrictBool = False
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class ContactValue(PipedriveModel):
    """One email or phone entry of a person."""

    value: str
    primary: StrictBool = False
    label: str | None = None


class Person(PipedriveModel):
    id: int
    name: str = ""
    first_name: str | None = None
    last_name: str | None = None
    org_id: int | None = None
    owner_id: int | None = None
    emails: list[ContactValue] = Field(default_factory=list)
    phones: list[ContactValue] = Field(default_factory=list)
    update_time: datetime | None = None
    is_deleted: StrictBool = False
    custom_fields: dict[str, Any] = Field(default_factory=dict)

    @property
    def primary_email(self) -> str | None:
        chosen = next((e for e in self.emails if e.primary), self.emails[0] if self.emails else None)
        return chosen.value if chosen else None


class ProductPrice(PipedriveModel):
    price: float
    currency: str
    cost: float | None = None
    direct_cost: float | None = None
    product_id: int | None = None
    notes: str | None = None


class Product(PipedriveModel):
    id: int
    name: str
    code: str | None = None
    description: str | None = None
    unit: str | None = None
    tax: float = 0
    category: str | None = None
    is_linkable: StrictBool = True
    is_deleted: StrictBool = False
    prices: list[ProductPrice] = Field(default_factory=list)
    update_time: datetime | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("code", mode="before")
    @classmethod
    def code_as_text(cls, value: Any) -> Any:
        # The v2 search example types `code` as an integer (spec quirk, UNCONFIRMED): keep it as text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class FieldOption(PipedriveModel):
    """An enum/set option; ids are integers for custom fields, strings for some built-ins."""

    id: int | str
    label: str


class FieldDefinition(PipedriveModel):
    """A field definition, normalised from v2 (`field_code`/`field_name`) or v1 (`key`/`name`)."""

    code: str = Field(validation_alias="field_code")
    name: str = Field(validation_alias="field_name")
    field_type: str
    is_custom: StrictBool = Field(False, validation_alias="is_custom_field")
    options: list[FieldOption] = Field(default_factory=list)

    @classmethod
    def from_v1(cls, raw: dict[str, Any]) -> FieldDefinition:
        """v1 `/v1/dealFields` items use `key`, `name`, `edit_flag`."""
        return cls.model_validate(
            {
                "field_code": raw.get("key"),
                "field_name": raw.get("name"),
                "field_type": raw.get("field_type"),
                "is_custom_field": raw.get("edit_flag", False),
                "options": raw.get("options"),
            }
        )


class Webhook(PipedriveModel):
    """A registered webhook as `/v1/webhooks` returns it."""

    id: int
    subscription_url: str
    event_action: str
    event_object: str
    version: str | None = None
    http_auth_user: str | None = None
    name: str | None = None
    is_active: int | bool | None = None


class WebhookEvent(BaseModel):
    """One normalised webhook event, whichever payload version (v2 '2.0' or v1 '1.0') carried it.

    `action` uses the v2 vocabulary (v1 added/updated/deleted/merged are mapped). `id` is the
    entity id; `event_id` is Pipedrive's event id (v2 `meta.id`), the natural dedupe key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity: str
    action: WebhookAction
    id: int
    status: str | None = None
    previous_status: str | None = None
    timestamp: datetime
    attempt: int = 1
    correlation_id: str | None = None
    event_id: str | None = None
    version: Literal["1.0", "2.0"]
    data: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None

    @property
    def became_won(self) -> bool:
        """True when this event is a change of a deal into `won` (the order-build trigger).

        Only a change (v1 `updated`/`merged`) that names the previous status counts: a delete never queues,
        and a deal created already won is left to the poll, which reads it from the API.
        """
        if self.entity != "deal" or self.action != "change" or self.status != "won":
            return False
        return self.previous_status is not None and self.previous_status != "won"


# --- write payloads (what we send; extra fields are a bug on our side, so forbidden) ----------


class WriteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def body(self) -> dict[str, Any]:
        """JSON body with only the fields the caller set (PATCH must not clear the rest)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ProductPriceInput(WriteModel):
    price: float
    currency: str = Field(min_length=3, max_length=3)
    cost: float | None = None
    direct_cost: float | None = None
    notes: str | None = None


class ProductInput(WriteModel):
    """POST/PATCH /api/v2/products body. `prices` on PATCH replaces the whole array (v2 rule)."""

    name: str | None = Field(None, min_length=1)
    code: str | None = None
    description: str | None = None
    unit: str | None = None
    tax: float | None = None
    category: str | None = None
    is_linkable: bool | None = None
    visible_to: int | None = None
    owner_id: int | None = None
    prices: list[ProductPriceInput] | None = None
    custom_fields: dict[str, Any] | None = None


class AddressInput(WriteModel):
    """Only `value` is required when setting an address (SPEC-v2)."""

    value: str
    country: str | None = None
    locality: str | None = None
    postal_code: str | None = None
    route: str | None = None
    street_number: str | None = None
    admin_area_level_1: str | None = None


class OrganizationInput(WriteModel):
    """POST/PATCH /api/v2/organizations body (custom fields nested, never at the top level)."""

    name: str | None = Field(None, min_length=1)
    owner_id: int | None = None
    visible_to: int | None = None
    label_ids: list[int] | None = None
    address: AddressInput | None = None
    custom_fields: dict[str, Any] | None = None
