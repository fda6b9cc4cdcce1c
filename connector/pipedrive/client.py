"""PipedriveClient: one httpx.AsyncClient over the shared retry/pacing transport, typed reads/writes.

Knows Pipedrive's API, not our flows. Paths are absolute from the company origin (`/api/v2/...`,
`/v1/...`), so `base_url` is `https://{company}.pipedrive.com` (or the simulator) and an OAuth
`api_domain` can re-target it. Every response is decoded into a model; a body that breaks the
contract raises ProtocolError naming the field, an error status the typed error of errors.py.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, field_validator
from pydantic import ValidationError as PydanticValidationError

from connector.api_auth import ApiAuth
from connector.errors import ProtocolError, TransientError, ValidationError, written
from connector.pacing import DEFAULT_CLASS, RateLimitPacer
from connector.pipedrive.errors import PIPEDRIVE_ERRORS, call_name, decode_envelope
from connector.pipedrive.models import (
    Deal,
    DealProduct,
    FieldDefinition,
    Organization,
    OrganizationInput,
    Person,
    Product,
    ProductInput,
    Webhook,
)
from connector.pipedrive.paging import MAX_LIMIT, iter_cursor
from connector.retry import UNANSWERED, RetryPolicy, RetryTransport, failure_error, failure_of, no_answer
from connector.telemetry import counting_transport
from connector.validation import problem_lines

M = TypeVar("M", bound=BaseModel)
FieldEntity = Literal["deal", "organization", "person", "product"]
PRODUCT_IDS_PER_CALL = 100  # `/products?ids=` (SPEC-v2 lists `ids`; we keep chunks at the deals' 100)
DEAL_IDS_PER_CALL = 100  # `/deals/products?deal_ids=` accepts up to 100 ids (SPEC-v2)

# Pipedrive's burst limit is per token: every client of one credential shares one pacer (per loop,
# because the pacer's asyncio.Lock belongs to a loop).
_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RateLimitPacer]] = weakref.WeakKeyDictionary()


def shared_pacer(key: str | None, policy: RetryPolicy) -> RateLimitPacer:
    if key is None:
        return RateLimitPacer(policy)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return RateLimitPacer(policy)
    return _PACERS.setdefault(loop, {}).setdefault(key, RateLimitPacer(policy))


SEARCH_CLASS = "search"


def rate_classes(request: httpx.Request) -> tuple[str, ...]:
    """Search API calls have their own burst limit (10 / 2 s on every plan) and count in the general one too."""
    path = request.url.path
    if path.endswith("/search") or "/itemSearch" in path:
        return (SEARCH_CLASS, DEFAULT_CLASS)
    return (DEFAULT_CLASS,)


def rfc3339(moment: datetime) -> str:
    """Whole-second UTC RFC 3339; fractional seconds are reported rejected by `updated_since`."""
    if moment.tzinfo is None:
        raise ValueError("timestamps sent to Pipedrive must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate(model: type[M], raw: Any, where: str) -> M:
    """Model from an API item; a contract break becomes ProtocolError naming each bad field."""
    try:
        return model.model_validate(raw)
    except PydanticValidationError as exc:
        problems = problem_lines(exc, root="<root>", with_input=True)
        raise ProtocolError(f"Pipedrive {where}: unexpected {model.__name__}: " + "; ".join(problems)) from None


class PipedriveClient:
    """Async Pipedrive API client; use `async with` (or `aclose()`) to release connections."""

    def __init__(
        self,
        base_url: str,
        auth: ApiAuth,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30,
    ) -> None:
        self.policy = policy or RetryPolicy()
        retrying = RetryTransport(
            counting_transport(transport or httpx.AsyncHTTPTransport(), "pipedrive"),  # telemetry: 429s per API
            self.policy,
            classify=PIPEDRIVE_ERRORS.failure,
            pacer=shared_pacer(auth.pacing_key, self.policy),
            rate_classes=rate_classes,
        )
        self.auth = auth
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=auth,
            transport=retrying,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "ml-connector"},
        )

    async def __aenter__(self) -> PipedriveClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.auth.aclose()

    # --- transport ----------------------------------------------------------------------------

    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> dict[str, Any]:
        """One call; returns the decoded success envelope or raises a typed ConnectorError (a create whose
        answer was lost, or came back as done but unreadable, is UnknownOutcomeError: look before creating
        again)."""
        try:
            response = await self._http.request(method, path, params=params, json=json)
        except UNANSWERED as exc:
            raise no_answer(exc.request, exc, call_name(exc.request)) from None
        except httpx.HTTPError as exc:
            raise TransientError(f"Pipedrive {method} {path}: {type(exc).__name__}") from None
        failure = failure_of(response, PIPEDRIVE_ERRORS.failure)
        if failure is not None:
            raise failure_error(response.request, failure, call_name(response.request))
        with written(creates=method == "POST"):
            return decode_envelope(response)

    async def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        envelope = await self.request(method, path, **kwargs)
        with written(creates=method == "POST"):
            if envelope.get("data") is None:
                raise ProtocolError(f"Pipedrive {method} {path}: response has no data")
            return validate(model, envelope["data"], f"{method} {path}")

    def _items(
        self, path: str, params: dict[str, Any] | None, *, limit: int = MAX_LIMIT, items_key: str | None = None
    ) -> AsyncIterator[Any]:
        async def fetch(query: dict[str, Any]) -> dict[str, Any]:
            return await self.request("GET", path, params=query)

        return iter_cursor(fetch, params or {}, where=f"GET {path}", limit=limit, items_key=items_key)

    async def _iter(
        self, model: type[M], path: str, params: dict[str, Any] | None = None, *, limit: int = MAX_LIMIT
    ) -> AsyncIterator[M]:
        async for raw in self._items(path, params, limit=limit):
            yield validate(model, raw, f"GET {path}")

    async def _search_hits(self, model: type[M], path: str, params: dict[str, Any]) -> AsyncIterator[M]:
        """The `item` of every search result (`data.items[].item`), as `model`."""
        where = f"GET {path}"
        async for raw in self._items(path, params, limit=100, items_key="items"):
            item = raw.get("item") if isinstance(raw, dict) else None
            if not isinstance(item, dict):
                raise ProtocolError(f"Pipedrive {where}: search result without an `item` object")
            yield validate(model, item, where)

    # --- deals --------------------------------------------------------------------------------

    async def get_deal(self, deal_id: int) -> Deal:
        return await self._one(Deal, "GET", f"/api/v2/deals/{int(deal_id)}")

    def iter_deals(self, *, limit: int = MAX_LIMIT, **filters: Any) -> AsyncIterator[Deal]:
        """Any `/api/v2/deals` filters (status, updated_since, sort_by, ...) as keyword arguments."""
        return self._iter(Deal, "/api/v2/deals", filters, limit=limit)

    def iter_won_deals(
        self, since: datetime, *, until: datetime | None = None, limit: int = MAX_LIMIT, archived: bool = False
    ) -> AsyncIterator[Deal]:
        """Won deals updated at or after `since` (inclusive), oldest change first: a poll watermark.
        `archived=True` lists the archived ones, which `/deals` leaves out since July 2025 (cost 20, not 10)."""
        params: dict[str, Any] = {
            "status": "won",
            "updated_since": rfc3339(since),
            "sort_by": "update_time",
            "sort_direction": "asc",
        }
        if until is not None:
            params["updated_until"] = rfc3339(until)
        return self._iter(Deal, "/api/v2/deals/archived" if archived else "/api/v2/deals", params, limit=limit)

    async def get_deal_products(self, deal_id: int) -> list[DealProduct]:
        return [p async for p in self._iter(DealProduct, f"/api/v2/deals/{int(deal_id)}/products")]

    async def get_products_for_deals(self, deal_ids: Iterable[int]) -> dict[int, list[DealProduct]]:
        """Products of many deals in ceil(n/100) paged calls; every asked id is a key (maybe empty)."""
        ids = list(dict.fromkeys(int(i) for i in deal_ids))
        result: dict[int, list[DealProduct]] = {i: [] for i in ids}
        for start in range(0, len(ids), DEAL_IDS_PER_CALL):
            chunk = ids[start : start + DEAL_IDS_PER_CALL]
            params = {"deal_ids": ",".join(map(str, chunk))}
            async for line in self._iter(DealProduct, "/api/v2/deals/products", params):
                if line.deal_id not in result:
                    raise ProtocolError(f"Pipedrive GET /api/v2/deals/products: line for unasked deal {line.deal_id}")
                result[line.deal_id].append(line)
        return result

    async def update_deal_fields(self, deal_id: int, custom_fields: dict[str, Any]) -> Deal:
        """Write custom fields only (e.g. the D365 order number); nothing financial goes to Pipedrive."""
        if not custom_fields:
            raise ValidationError("update_deal_fields: no custom fields given")
        body = {"custom_fields": custom_fields}
        return await self._one(Deal, "PATCH", f"/api/v2/deals/{int(deal_id)}", json=body)

    # --- organizations and persons ------------------------------------------------------------

    async def get_organization(self, org_id: int) -> Organization:
        return await self._one(Organization, "GET", f"/api/v2/organizations/{int(org_id)}")

    def iter_organizations(self, *, limit: int = MAX_LIMIT, **filters: Any) -> AsyncIterator[Organization]:
        return self._iter(Organization, "/api/v2/organizations", filters, limit=limit)

    async def create_organization(self, data: OrganizationInput) -> Organization:
        if not data.name:
            raise ValidationError("create_organization: name is required", lines=["name: required"])
        return await self._one(Organization, "POST", "/api/v2/organizations", json=data.body())

    async def update_organization(self, org_id: int, data: OrganizationInput) -> Organization:
        return await self._one(Organization, "PATCH", f"/api/v2/organizations/{int(org_id)}", json=data.body())

    async def find_organizations_by_field(self, field_code: str, value: str) -> list[Organization]:
        """Organizations whose custom field `field_code` equals `value` exactly (the D365 account field).

        Search hits list custom-field VALUES without their keys, so each hit is re-read and compared
        on the named field: a value that happens to sit in another field is not a match.
        """
        value = value.strip()
        if not value:
            raise ValidationError("find_organizations_by_field: empty value", lines=["value: empty"])
        params = {"term": value, "fields": "custom_fields", "exact_match": "true"}
        ids = [hit.id async for hit in self._search_hits(_OrgHit, "/api/v2/organizations/search", params)]
        found = []
        for org_id in dict.fromkeys(ids):
            org = await self.get_organization(org_id)
            if not org.is_deleted and str(org.custom_fields.get(field_code) or "").strip() == value:
                found.append(org)
        return found

    async def get_person(self, person_id: int) -> Person:
        return await self._one(Person, "GET", f"/api/v2/persons/{int(person_id)}")

    # --- products -----------------------------------------------------------------------------

    async def get_product(self, product_id: int) -> Product:
        return await self._one(Product, "GET", f"/api/v2/products/{int(product_id)}")

    async def get_products(self, product_ids: Iterable[int]) -> dict[int, Product]:
        """Many products in ceil(n/100) calls (`ids` filter); ids that no longer exist are absent."""
        ids = list(dict.fromkeys(int(i) for i in product_ids))
        found: dict[int, Product] = {}
        for start in range(0, len(ids), PRODUCT_IDS_PER_CALL):
            chunk = ids[start : start + PRODUCT_IDS_PER_CALL]
            async for product in self._iter(Product, "/api/v2/products", {"ids": ",".join(map(str, chunk))}):
                found[product.id] = product
        return found

    def iter_products(self, *, updated_since: datetime | None = None, limit: int = MAX_LIMIT) -> AsyncIterator[Product]:
        params: dict[str, Any] = {"sort_by": "id", "sort_direction": "asc"}
        if updated_since is not None:
            params["updated_since"] = rfc3339(updated_since)
        return self._iter(Product, "/api/v2/products", params, limit=limit)

    async def search_product_by_code(self, code: str) -> Product | None:
        """The product whose code equals `code` (exact match, case-insensitive in Pipedrive), or None.

        Search hits are partial records, so the match is re-read in full (1 more token).
        """
        code = code.strip()
        if not code:
            raise ValidationError("search_product_by_code: empty code", lines=["code: empty"])
        params = {"term": code, "fields": "code", "exact_match": "true"}
        hits: list[tuple[int, str]] = []
        async for found in self._search_hits(_SearchHit, "/api/v2/products/search", params):
            if found.code is not None and found.code.casefold() == code.casefold():
                hits.append((found.id, found.code))
        if not hits:
            return None
        exact = [pid for pid, hit in hits if hit == code]
        return await self.get_product(exact[0] if exact else hits[0][0])

    async def create_product(self, data: ProductInput) -> Product:
        if not data.name:
            raise ValidationError("create_product: name is required", lines=["name: required"])
        return await self._one(Product, "POST", "/api/v2/products", json=data.body())

    async def update_product(self, product_id: int, data: ProductInput) -> Product:
        return await self._one(Product, "PATCH", f"/api/v2/products/{int(product_id)}", json=data.body())

    # --- field definitions --------------------------------------------------------------------

    def iter_field_definitions(self, entity: FieldEntity) -> AsyncIterator[FieldDefinition]:
        return self._iter(FieldDefinition, f"/api/v2/{entity}Fields")

    # --- webhooks (v1 only) -------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        envelope = await self.request("GET", "/v1/webhooks")
        data = envelope.get("data") or []
        if not isinstance(data, list):
            raise ProtocolError("Pipedrive GET /v1/webhooks: data is not a list")
        return [validate(Webhook, raw, "GET /v1/webhooks") for raw in data]

    async def create_webhook(self, body: dict[str, Any]) -> Webhook:
        return await self._one(Webhook, "POST", "/v1/webhooks", json=body)

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.request("DELETE", f"/v1/webhooks/{int(webhook_id)}")

    async def ensure_webhook(
        self,
        url: str,
        user: str,
        password: str,
        event_action: str = "change",
        event_object: str = "deal",
        version: str = "2.0",
    ) -> Webhook:
        """Idempotent registration; see connector.pipedrive.webhooks.ensure_webhook."""
        from connector.pipedrive.webhooks import ensure_webhook

        return await ensure_webhook(self, url, user, password, event_action, event_object, version)


class _OrgHit(BaseModel):
    id: int


class _SearchHit(BaseModel):
    id: int
    code: str | None = None

    @field_validator("code", mode="before")
    @classmethod
    def integer_code_as_text(cls, value: Any) -> Any:
        # The spec example types `code` as an integer (UNCONFIRMED quirk): compare it as text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
