"""Async D365 F&O OData client: one httpx.AsyncClient, the shared retry policy, typed helpers.

The client knows OData and F&O conventions, not our flows: entity sets, keys, company scoping,
paging, `$batch` changesets, and the error table. Every failure leaves as a typed
`connector.errors` exception whose text names the operation, never a token or a body we sent.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError as PydanticValidationError

from connector.api_auth import ApiAuth
from connector.d365 import odata
from connector.d365.batch import Operation, batch_parts, build_changeset
from connector.d365.errors import classify, protocol_error
from connector.d365.lookups import MasterDataLookups, select_for
from connector.d365.models import (
    Currency,
    Customer,
    CustomerGroup,
    D365Create,
    D365Entity,
    LegalEntity,
    ReleasedProduct,
    ReleasedProductName,
    SalesOrderHeader,
    SalesOrderLine,
)
from connector.d365.orders import SalesOrders
from connector.errors import NotFoundError, PermanentError, written
from connector.paging import Page, follow_pages
from connector.retry import UNANSWERED, RetryPolicy, RetryTransport, Sleep, failure_error, failure_of, no_answer
from connector.telemetry import counting_transport
from connector.validation import problem_lines

E = TypeVar("E", bound=D365Entity)
Key = Mapping[str, odata.Scalar]

ODATA_HEADERS = {"OData-Version": "4.0", "OData-MaxVersion": "4.0", "Accept": "application/json"}
# Whole request URL, encoded. IIS (F&O's host) refuses longer query strings by default (maxQueryString).
MAX_URL_LENGTH = 2048
# Key fields per entity set: every paged read is ordered by them unless told otherwise, so $skip
# paging neither repeats nor skips rows (F&O pages without a stable order otherwise).
KEYS: dict[str, tuple[str, ...]] = {
    m.entity_set: m.key_fields
    for m in (LegalEntity, Currency, CustomerGroup, Customer, ReleasedProduct, ReleasedProductName,
              SalesOrderHeader, SalesOrderLine)
}  # fmt: skip


class D365Client(MasterDataLookups, SalesOrders):
    """Create once per worker and share; use as `async with D365Client(...) as d365:`."""

    def __init__(
        self,
        environment_url: str,
        auth: ApiAuth,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: str | bool = True,
        timeout: float = 60,
        sleep: Sleep | None = None,
        default_legal_entity: str | None = None,
        max_url_length: int = MAX_URL_LENGTH,
    ) -> None:
        self.environment_url = environment_url.rstrip("/")
        # The company flows use when a deal names none (settings.d365_default_legal_entity); helpers take it explicitly.
        self.default_legal_entity = default_legal_entity.lower() if default_legal_entity else None
        self.data_url = self.environment_url + "/data"
        self.policy = policy or RetryPolicy()
        self.max_url_length = max_url_length
        # A CA bundle path becomes an SSLContext (httpx 0.28 deprecates verify=<path>).
        tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        inner = transport or httpx.AsyncHTTPTransport(verify=tls)
        # `sleep` lets tests observe the waits; production uses asyncio.sleep.
        transport = RetryTransport(
            counting_transport(inner, "d365"),  # telemetry: every attempt, 429s per API
            self.policy,
            classify=classify,
            sleep=sleep or asyncio.sleep,
        )
        self.auth = auth
        self._http = httpx.AsyncClient(auth=auth, transport=transport, timeout=timeout, headers=ODATA_HEADERS)
        self._host = urlsplit(self.data_url).netloc.lower()

    async def __aenter__(self) -> D365Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.auth.aclose()

    # --- plumbing -------------------------------------------------------------------------------

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request through the retry transport; a POST whose answer was lost is UnknownOutcomeError
        (no answer after it left, or a gateway 502/504 or untyped 500: it may have been saved)."""
        try:
            response = await self._http.request(method, url, **kwargs)
        except UNANSWERED as exc:
            raise no_answer(exc.request, exc, f"D365 {what}") from None
        failure = failure_of(response, classify)
        if failure is not None:
            raise failure_error(response.request, failure, what)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
            ctype = response.headers.get("content-type", "no content type")
            raise protocol_error(what, f"expected JSON, got {ctype.split(';')[0]}", response.status_code) from None
        if not isinstance(data, dict):
            raise protocol_error(what, "expected a JSON object", response.status_code)
        return data

    @staticmethod
    def _model(model: type[E], data: Mapping[str, Any], what: str) -> E:
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            problems = "; ".join(problem_lines(exc)[:5])
            raise protocol_error(what, f"unexpected {model.entity_set} record: {problems}") from None

    @classmethod
    def _created(cls, model: type[E], data: Mapping[str, Any], what: str) -> E:
        """The record a create answered with; one that cannot be read may still be saved (`written`)."""
        with written():
            return cls._model(model, data, what)

    def _url(self, path: str, query: odata.Query | None = None) -> str:
        return f"{self.data_url}/{path}" + (query.to_query_string() if query else "")

    def _checked_url(self, path: str, query: odata.Query, what: str) -> str:
        url = self._url(path, query)
        if len(url) > self.max_url_length:
            raise PermanentError(f"{what}: the query URL is {len(url)} characters; D365 takes {self.max_url_length}")
        return url

    def _key_path(self, entity_set: str, key: Key, what: str) -> str:
        try:
            return odata.entity_path(entity_set, key)
        except ValueError as exc:
            raise PermanentError(f"{what}: {exc}") from None

    def _own_host(self, url: str, what: str) -> str:
        # nextLinks are followed verbatim, but only to our own host: the request carries our bearer token.
        if urlsplit(url).netloc.lower() != self._host:
            raise protocol_error(what, "@odata.nextLink is missing or points to another host")
        return url

    # --- generic OData --------------------------------------------------------------------------

    async def iter_pages(self, entity_set: str, query: odata.Query) -> AsyncIterator[list[dict[str, Any]]]:
        """Each server page's `value` rows, following `@odata.nextLink` until there is none."""
        what = f"GET {entity_set}"

        async def fetch(url: str) -> Page[dict[str, Any], str]:
            body = self._json(await self._send("GET", self._own_host(url, what), what), what)
            rows = body.get("value")
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise protocol_error(what, "collection response without a 'value' array of objects")
            link = body.get("@odata.nextLink")
            return Page(rows, None if link is None else str(link))  # checked when it is followed

        async for rows in follow_pages(fetch, self._checked_url(odata.entity_path(entity_set), query, what), what=what):
            yield rows

    async def iter_entities(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        orderby: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
        top: int | None = None,
        cross_company: bool = False,
        legal_entity: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Rows of an entity set. `legal_entity` scopes to one company (cross-company + dataAreaId filter).

        Without `orderby` the rows come in key order when the entity set's key is known (`KEYS`).
        """
        if orderby is None:
            orderby = [f"{name} asc" for name in KEYS.get(entity_set, ())]
        if legal_entity is not None:
            filter = odata.and_(odata.eq("dataAreaId", legal_entity.lower()), filter)
            cross_company = True
        query = odata.Query(
            filter=filter,
            select=tuple(select or ()),
            orderby=tuple(orderby or ()),
            expand=tuple(expand or ()),
            top=top,
            cross_company=cross_company,
        )
        seen = 0
        async for page in self.iter_pages(entity_set, query):
            for row in page:
                if top is not None and seen >= top:
                    return
                seen += 1
                yield row

    async def iter_records(self, model: type[E], **options: Any) -> AsyncIterator[E]:
        """Typed `iter_entities`, with `$select` limited to the model's fields unless given."""
        options.setdefault("select", select_for(model))
        async for row in self.iter_entities(model.entity_set, **options):
            yield self._model(model, row, f"GET {model.entity_set}")

    async def find_by_key(
        self, entity_set: str, key: Key, *, select: Sequence[str] | None = None, expand: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One record by its full key, looked up by `$filter` (see odata.py: F&O cannot route every key
        in a path); None when absent. Company keys go cross-company ([PYCLI])."""
        names = list(key)
        if select and not set(names) <= set(select):
            select = [*select, *(n for n in names if n not in select)]
        rows = self.iter_entities(
            entity_set,
            filter=odata.key_filter(key),
            select=select,
            expand=expand,
            orderby=[f"{n} asc" for n in names],
            cross_company="dataAreaId" in key,
        )
        async for row in rows:
            # `*` in a value is an F&O wildcard, so the filter may return neighbours: keep the exact key.
            if all(odata.same_key_value(row.get(name), value) for name, value in key.items()):
                return row
        return None

    async def get_by_key(
        self, entity_set: str, key: Key, *, select: Sequence[str] | None = None, expand: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """`find_by_key`, raising NotFoundError when the record is absent."""
        row = await self.find_by_key(entity_set, key, select=select, expand=expand)
        if row is None:
            raise NotFoundError(f"GET {entity_set}: {', '.join(f'{k}={v!r}' for k, v in key.items())} not found")
        return row

    async def iter_matching(
        self,
        entity_set: str,
        field: str,
        values: Sequence[str],
        *,
        select: Sequence[str] | None = None,
        legal_entity: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Rows whose `field` equals one of `values` (case-insensitive, as F&O compares), in as few
        queries as the URL limit allows; wildcard neighbours of a `*` are left out."""
        what = f"GET {entity_set}"
        wanted = {v.casefold() for v in values}
        base = odata.eq("dataAreaId", legal_entity.lower()) if legal_entity is not None else None
        orderby = tuple(f"{name} asc" for name in KEYS.get(entity_set, (field,)))

        def fits(clause: str) -> bool:
            query = odata.Query(filter=odata.and_(base, clause), select=tuple(select or ()), orderby=orderby,
                                cross_company=legal_entity is not None)  # fmt: skip
            return len(self._url(entity_set, query)) <= self.max_url_length

        try:
            chunks = list(odata.eq_any_chunks(field, list(dict.fromkeys(values)), fits))
        except ValueError as exc:
            raise PermanentError(f"{what}: {exc}") from None
        for _, clause in chunks:
            rows = self.iter_entities(entity_set, filter=clause, select=select, orderby=list(orderby),
                                      legal_entity=legal_entity)  # fmt: skip
            async for row in rows:
                if str(row.get(field, "")).casefold() in wanted:
                    yield row

    async def create(self, entity_set: str, payload: Mapping[str, Any] | D365Create) -> dict[str, Any]:
        """POST; returns the created record as F&O sends it (201, full entity with number-sequence values)."""
        what = f"POST {entity_set}"
        body = payload.to_payload() if isinstance(payload, D365Create) else dict(payload)
        response = await self._send("POST", self._url(odata.entity_path(entity_set)), what, json=body)
        with written():
            return self._json(response, what)

    async def update(self, entity_set: str, key: Key, patch: Mapping[str, Any]) -> None:
        """PATCH by full key (F&O answers 204)."""
        what = f"PATCH {entity_set}"
        query = odata.Query(cross_company="dataAreaId" in key)
        await self._send("PATCH", self._url(self._key_path(entity_set, key, what), query), what, json=dict(patch))

    async def delete(self, entity_set: str, key: Key) -> None:
        what = f"DELETE {entity_set}"
        query = odata.Query(cross_company="dataAreaId" in key)
        await self._send("DELETE", self._url(self._key_path(entity_set, key, what), query), what)

    async def execute_changeset(self, operations: Sequence[Operation]) -> list[dict[str, Any]]:
        """Run operations atomically in one `$batch` changeset; returns each operation's JSON ({} for 204).

        A changeset that failed inside (throttled or transient part) committed nothing: the retry
        transport resends it like any answer that says so (see connector.retry).
        """
        what = "POST $batch (" + ", ".join(f"{op.method} {op.path.split('(')[0]}" for op in operations) + ")"
        content_type, body = build_changeset(self.data_url, operations)
        response = await self._send(
            "POST", self._url("$batch"), what, content=body, headers={"Content-Type": content_type}
        )
        with written():
            parts = batch_parts(response)
            if len(parts) != len(operations):
                raise protocol_error(what, f"{len(parts)} responses for {len(operations)} operations")
            return [p.json() for p in parts]
