"""OData wire formats of F&O values and the base classes of every D365 record model.

Decimals travel as JSON numbers, date-only fields as `YYYY-MM-DDT12:00:00Z`, company ids lower
case (docs/api-facts.md, D365 §9). Models use the real OData names as aliases and accept either name.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer


def decimal_as_json_number(value: Decimal) -> int | float:
    """OData Edm.Decimal travels as a JSON number (`389.45`, `0`), never as a string."""
    return int(value) if value == value.to_integral_value() else float(value)


def date_as_odata_noon_utc(value: date) -> str:
    """Date-only fields serialize as `YYYY-MM-DDT12:00:00Z` in F&O (docs/api-facts.md, D365 §9)."""
    return f"{value.isoformat()}T12:00:00Z"


def company_id_lower_case(value: object) -> object:
    """F&O returns company ids lower case and compares them case-insensitively (docs/api-facts.md, D365 §9)."""
    return value.lower() if isinstance(value, str) else value


def null_as_empty_text(value: object) -> object:
    """Tolerate `null` where F&O usually sends `""` (nullable Edm.String)."""
    return "" if value is None else value


Text = Annotated[str, BeforeValidator(null_as_empty_text)]
ODataDecimal = Annotated[Decimal, PlainSerializer(decimal_as_json_number, when_used="json")]
ODataDate = Annotated[date, PlainSerializer(date_as_odata_noon_utc, when_used="json")]
CompanyId = Annotated[str, BeforeValidator(company_id_lower_case), Field(min_length=1, max_length=4)]
# 1900-01-01 is F&O's "empty" date; keep it as a datetime, callers test `is_empty_date`.
EMPTY_DATE = datetime(1900, 1, 1, tzinfo=UTC)


def is_empty_date(value: datetime | None) -> bool:
    return value is None or value.date() == EMPTY_DATE.date()


class D365Model(BaseModel):
    """Base of all records: alias = OData name, populate by either name."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=False)

    def to_payload(self) -> dict[str, Any]:
        """JSON body for POST/PATCH: OData names, only fields explicitly set or non-None."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=False, exclude_none=True)


class D365Entity(D365Model):
    """A record read from an entity set; `entity_set` and `key_fields` name it in OData terms."""

    entity_set: ClassVar[str]
    key_fields: ClassVar[tuple[str, ...]]

    etag: str | None = Field(None, alias="@odata.etag")

    def key(self) -> dict[str, str]:
        """The full OData key (all parts are required by F&O for by-key calls)."""
        data = self.model_dump(by_alias=True)
        return {name: str(data[name]) for name in self.key_fields}


class D365Create(D365Model):
    """A create payload: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    entity_set: ClassVar[str]
