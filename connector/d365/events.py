"""D365 F&O business events as POSTed to an HTTPS endpoint (docs/api-facts.md, D365 §8).

The envelope (`BusinessEventId`, `BusinessEventLegalEntity`, `ControlNumber`, `EventId`, `EventTime`
as `/Date(ms)/`, `EventTimeIso8601`, `MajorVersion`, ...) is followed by event-specific fields,
which land in `BusinessEvent.fields`. On activation F&O sends `BusinessEventsTestEndpointContract`;
callers acknowledge it and do nothing else. `ControlNumber` grows but has gaps, so dedupe on
`EventId` (a GUID) and use ControlNumber only for ordering.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from connector.d365.data_events import DataEvent, is_data_event, parse_data_event
from connector.errors import ValidationError
from connector.inputs import BadInput, parse_json
from connector.validation import problem_lines

TEST_EVENT_ID = "BusinessEventsTestEndpointContract"
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Ids become job keys, audit subjects and queue messages: printable ASCII, bounded (real ones are GUIDs/names).
_PRINTABLE = r"^[\x21-\x7e]+$"
_PRINTABLE_OR_EMPTY = r"^[\x21-\x7e]*$"


class InvalidEventError(ValidationError):
    """The body is not a D365 business event; the endpoint answers 400 with `lines`."""


def parse_ms_date(value: object) -> datetime | None:
    """`/Date(1697470966000)/` (optionally with `+0000`) -> aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a /Date(ms)/ string")
    match = _MS_DATE.match(value)
    if not match:
        raise ValueError(f"expected /Date(ms)/, got {value[:40]!r}")
    return _EPOCH + timedelta(milliseconds=int(match.group(1)))


class BusinessEvent(BaseModel):
    """One business event; envelope fields typed, the rest in `fields` (event-specific DataMembers)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)

    business_event_id: str = Field(alias="BusinessEventId", min_length=1, max_length=200, pattern=_PRINTABLE)
    legal_entity: str = Field("", alias="BusinessEventLegalEntity", max_length=20, pattern=_PRINTABLE_OR_EMPTY)
    control_number: int = Field(
        alias="ControlNumber", strict=True, ge=-(2**63), le=2**63 - 1
    )  # Int64: the test event sends -2^63
    event_id: str = Field(alias="EventId", min_length=1, max_length=100, pattern=_PRINTABLE)
    event_time: datetime | None = Field(None, alias="EventTime")
    event_time_iso: datetime | None = Field(None, alias="EventTimeIso8601")
    context_record_subject: str = Field("", alias="ContextRecordSubject")
    initiating_user: str = Field("", alias="InitiatingUserAADObjectId")
    major_version: int = Field(0, alias="MajorVersion")
    minor_version: int = Field(0, alias="MinorVersion")
    parent_context_record_subjects: list[Any] | None = Field(None, alias="ParentContextRecordSubjects")

    @field_validator("event_time", mode="before")
    @classmethod
    def parse_event_time(cls, value: object) -> datetime | None:
        return parse_ms_date(value)

    @field_validator("legal_entity")
    @classmethod
    def legal_entity_lower_case(cls, value: str) -> str:
        return value.lower()

    @field_validator("event_id")
    @classmethod
    def normalised_event_id(cls, value: str) -> str:
        # Real ids are upper-case GUIDs without braces; normalise so dedupe keys compare equal.
        value = value.strip().strip("{}").upper()
        if not value:
            raise ValueError("EventId is empty")
        return value

    @property
    def is_test(self) -> bool:
        return self.business_event_id == TEST_EVENT_ID

    @property
    def fields(self) -> dict[str, Any]:
        """Event-specific fields (e.g. `Account` of a custom customer-changed event)."""
        return dict(self.model_extra or {})

    @property
    def when(self) -> datetime | None:
        return self.event_time_iso or self.event_time

    @property
    def dedupe_key(self) -> str:
        return self.event_id


def parse_business_events(body: bytes | str | object) -> list[BusinessEvent]:
    """Parse one business event object or an array of them; anything else raises InvalidEventError.

    F&O's HTTPS endpoint sends one JSON object per POST; an array is accepted too (UNCONFIRMED
    whether bundling reaches HTTPS endpoints, so we are tolerant).
    """
    events = parse_events(body)
    for index, event in enumerate(events):
        if isinstance(event, DataEvent):
            raise InvalidEventError(
                "body is not a D365 business event",
                lines=[f"item {index}: expected an object with BusinessEventId, ControlNumber and EventId"],
            )
    return [e for e in events if isinstance(e, BusinessEvent)]


def parse_events(body: bytes | str | object) -> list[BusinessEvent | DataEvent]:
    """Business events and data events (RemoteExecutionContext, see data_events.py) of one delivery.

    The activation test event is recognised by its BusinessEventId before any other check, so an
    endpoint is never refused at activation for a field the test message lacks or fills oddly.
    """
    items = _items(body)
    events: list[BusinessEvent | DataEvent] = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("BusinessEventId") == TEST_EVENT_ID:
            events.append(_test_event(item))
            continue
        if is_data_event(item):
            try:
                events.append(parse_data_event(item))
            except (ValueError, PydanticValidationError) as exc:
                line = f"item {index}: data event: {str(exc).splitlines()[0]}"
                raise InvalidEventError(f"malformed data event: {line}", lines=[line]) from None
            continue
        if not isinstance(item, dict) or "BusinessEventId" not in item:
            raise InvalidEventError(
                "body is not a D365 business event",
                lines=[f"item {index}: expected an object with BusinessEventId, ControlNumber and EventId"],
            )
        try:
            events.append(BusinessEvent.model_validate(item))
        except PydanticValidationError as exc:
            lines = [f"item {index}: {line}" for line in problem_lines(exc)]
            raise InvalidEventError("malformed business event: " + "; ".join(lines), lines=lines) from None
    return events


def _items(body: bytes | str | object) -> list[Any]:
    if isinstance(body, bytes | str):
        try:
            data = parse_json(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
        except BadInput as exc:
            raise InvalidEventError(f"body is not usable JSON: {exc}", lines=exc.lines) from None
    else:
        data = body
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidEventError("empty event array", lines=["no events in body"])
    return items


def _test_event(item: dict[str, Any]) -> BusinessEvent:
    """The activation test event, taken whatever its other fields hold (only printable, bounded ids kept)."""

    def text(name: str, limit: int) -> str:
        value = item.get(name)
        return value if isinstance(value, str) and len(value) <= limit and re.fullmatch(_PRINTABLE, value) else ""

    return BusinessEvent.model_construct(
        business_event_id=TEST_EVENT_ID,
        legal_entity=text("BusinessEventLegalEntity", 20).lower(),
        control_number=0,
        event_id=(text("EventId", 100) or "TEST").strip("{}").upper(),
    )


def parse_business_event(body: bytes | str | object) -> BusinessEvent:
    events = parse_business_events(body)
    if len(events) != 1:
        raise InvalidEventError("expected exactly one business event", lines=[f"got {len(events)} events"])
    return events[0]
