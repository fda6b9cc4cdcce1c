"""Which D365 business events mean "a customer / released product changed" (the mapping's `events`).

The standard catalog has none (docs/api-facts.md, D365 §8): the D365 admin activates custom events,
whose ids and key fields differ per customer (e.g. `FFYCustomerChangedBusinessEvent` with the account in
`Account`). Today's ids are the defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from connector.mapping.sections import Strict


class EventRule(Strict):
    """Which business event ids mean "this record changed", and the event field that holds its D365 key."""

    ids: list[Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[\x21-\x7e]{1,200}$")]] = Field(
        min_length=1
    )
    key_field: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]


def _customer_rule() -> EventRule:
    return EventRule(ids=["CustomerChangedBusinessEvent"], key_field="CustomerAccount")


def _product_rule() -> EventRule:
    return EventRule(ids=["ReleasedProductChangedBusinessEvent"], key_field="ItemNumber")


class EventsConfig(Strict):
    """The custom business events the D365 admin activates for master data (the standard catalog has none).

    E.g. a customer's own `FFYCustomerChangedBusinessEvent` carrying the account in `Account`.
    """

    customer_changed: EventRule = Field(default_factory=_customer_rule)
    product_changed: EventRule = Field(default_factory=_product_rule)

    @model_validator(mode="after")
    def each_id_means_one_change(self) -> EventsConfig:
        both = set(self.customer_changed.ids) & set(self.product_changed.ids)
        if both:
            shown = ", ".join(repr(i) for i in sorted(both))
            raise ValueError(
                f"event id {shown} is in both customer_changed.ids and product_changed.ids; it can mean one"
            )
        return self

    def route(self, business_event_id: str) -> tuple[Literal["customer", "product"], str] | None:
        """(what changed, the key field) for an event id; None when the event is not a master-data change."""
        if business_event_id in self.customer_changed.ids:
            return "customer", self.customer_changed.key_field
        if business_event_id in self.product_changed.ids:
            return "product", self.product_changed.key_field
        return None
