"""D365 data events: Dataverse-style change notifications of an entity (docs/api-facts.md, D365 §8).

F&O sends them through the Power Platform integration as a Dataverse RemoteExecutionContext:
`MessageName` OnExternalCreated/OnExternalUpdated/OnExternalDeleted, `PrimaryEntityName` the virtual
entity (`mserp_` + the lower-case AOT entity name, e.g. `mserp_custcustomerv3entity`), the fields in
`InputParameters` -> `Target` (and `PreImage`) as `mserp_<lower-case field>` attributes. That shape
comes from one third-party capture (F&O 10.0.48) and is UNCONFIRMED beyond it. Unlike a business
event there is no EventId: the dedupe key is made from the fields that identify one delivery.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DATA_EVENT_MARKERS = ("MessageName", "PrimaryEntityName", "InputParameters")
CHANGE_MESSAGES = ("OnExternalCreated", "OnExternalUpdated")
DELETE_MESSAGE = "OnExternalDeleted"
# Virtual entity -> (what changed, the attribute holding its D365 key).
DATA_EVENT_ENTITIES: dict[str, tuple[str, str]] = {
    "mserp_custcustomerv3entity": ("customer", "mserp_customeraccount"),
    "mserp_ecoresreleasedproductv2entity": ("product", "mserp_itemnumber"),
}
COMPANY_ATTRIBUTE = "mserp_dataareaid"


def is_data_event(item: object) -> bool:
    return isinstance(item, dict) and all(marker in item for marker in DATA_EVENT_MARKERS)


class DataEvent(BaseModel):
    """One data event: the message, the entity and the attributes of Target overlaid on PreImage."""

    model_config = ConfigDict(frozen=True)

    message_name: str = Field(max_length=100)
    entity_name: str = Field(max_length=200)
    record_id: str = Field("", max_length=100)
    correlation_id: str = Field("", max_length=100)
    created_on: str = Field("", max_length=100)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return self.dedupe_key

    @property
    def dedupe_key(self) -> str:
        """Equal for a redelivery of the same change, different for the next change of the record."""
        parts = "|".join((self.correlation_id, self.message_name, self.entity_name, self.record_id, self.created_on))
        return "DE-" + hashlib.sha256(parts.encode()).hexdigest()[:32].upper()

    @property
    def legal_entity(self) -> str:
        value = self.attributes.get(COMPANY_ATTRIBUTE)
        return value.lower() if isinstance(value, str) else ""

    @property
    def business_event_id(self) -> str:
        """For audit rows shared with business events: what kind of event this was."""
        return f"{self.message_name}:{self.entity_name}"


def parse_data_event(item: dict[str, Any]) -> DataEvent:
    """Read a RemoteExecutionContext; ValueError when its parts are not where the capture has them."""
    params = item.get("InputParameters")
    if not isinstance(params, list):
        raise ValueError("InputParameters: expected a list of {key, value}")
    attributes: dict[str, Any] = {}
    record_id = ""
    for name in ("PreImage", "Target"):  # Target (the change) wins over the image before it
        entity = next((p.get("value") for p in params if isinstance(p, dict) and p.get("key") == name), None)
        if entity is None:
            continue
        if not isinstance(entity, dict) or not isinstance(entity.get("Attributes"), list):
            raise ValueError(f"InputParameters.{name}: expected an entity with Attributes")
        for pair in entity["Attributes"]:
            if isinstance(pair, dict) and isinstance(pair.get("key"), str):
                attributes[pair["key"]] = pair.get("value")
        if isinstance(entity.get("Id"), str):
            record_id = entity["Id"]
    return DataEvent(
        message_name=_text(item.get("MessageName"), "MessageName"),
        entity_name=_text(item.get("PrimaryEntityName"), "PrimaryEntityName").lower(),
        record_id=record_id[:100],
        correlation_id=str(item.get("CorrelationId") or "")[:100],
        created_on=str(item.get("OperationCreatedOn") or "")[:100],
        attributes=attributes,
    )


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: expected a non-empty string")
    return value.strip()
