"""The OData resource layer: one request in, one response out, no HTTP server types.

Both the aiohttp routes and the $batch handler call `ODataService.handle`, so an operation inside a
changeset behaves exactly like the same request sent alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from connector.dev.sandbox.d365.entities import coerce_body, etag, format_key, parse_key
from connector.dev.sandbox.d365.metadata import NAMESPACE, EntitySet, to_csdl
from connector.dev.sandbox.d365.odata_errors import ODataError, WebApiError, bad_request, not_found
from connector.dev.sandbox.d365.odata_filter import ODataQueryError, evaluate, parse_filter
from connector.dev.sandbox.d365.rules import PRODUCT_TEXT_FIELDS, Rules, same_order
from connector.dev.sandbox.d365.store import Store

JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
QUERY_OPTIONS = {"$filter", "$select", "$top", "$skip", "$orderby", "$count", "$expand", "cross-company", "$format"}
EXPANDABLE = {("SalesOrderHeadersV2", "SalesOrderLines")}
# Routing sees the path after the host decoded it once: a key with `/` (or `\`, which the host turns
# into `/`) is split into two segments and no route matches.
_SEGMENT = re.compile(r"^(?P<set>[A-Za-z0-9_]+)(?:\((?P<key>[^/]*)\))?(?:/(?P<nav>[A-Za-z0-9_$]+))?$")
# ASP.NET's requestPathInvalidCharacters (`< > * % & : \ ?`) plus `+` (IIS double-escaping filter) and
# `#`: what F&O accepts of these in a decoded path is UNCONFIRMED, so the simulator refuses them all.
_PATH_REFUSED = "<>*%&:?+#"


@dataclass
class Response:
    status: int
    body: Any = None  # dict -> JSON, str -> text
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str  # after /data/, as sent: still percent-encoded
    query: dict[str, str]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ODataService:
    def __init__(self, store: Store, rules: Rules, *, base_url: str, page_size: int) -> None:
        self.store = store
        self.rules = rules
        self.base_url = base_url
        self.page_size = page_size

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except ODataQueryError as exc:
            return self.error(bad_request(f"The query specified in the URI is not valid. {exc}"))
        except ODataError as exc:
            return self.error(exc)

    @staticmethod
    def error(exc: ODataError) -> Response:
        return Response(exc.status, exc.body(), {"Content-Type": JSON_TYPE, **exc.headers})

    def _route(self, request: Request) -> Response:
        unknown = [k for k in request.query if k.startswith("$") and k not in QUERY_OPTIONS]
        if unknown:
            raise bad_request(f"The query parameter '{unknown[0]}' is not supported.")
        if request.query.get("$count", "true").lower() not in ("true", "false"):
            raise bad_request(f"'{request.query['$count']}' is not a valid count option.")
        path = unquote(request.path).replace("\\", "/").strip("/")  # the web host decodes once
        if path == "":
            return self._service_document()
        if path == "$metadata" and request.method.upper() == "GET":
            return Response(200, to_csdl(self.store.schema).encode(), {"Content-Type": "application/xml"})
        match = _SEGMENT.match(path)
        if not match or match.group("set") not in self.store.schema.entity_sets:
            return no_route(f"{self.base_url}/data/{path}")
        refused = next((ch for ch in match.group("key") or "" if ch in _PATH_REFUSED), None)
        if refused is not None:
            message = f"A potentially dangerous Request.Path value was detected from the client ({refused})."
            return Response(400, {"Message": message}, {"Content-Type": JSON_TYPE})
        entity = self.store.entity(match.group("set"))
        key_text, nav = match.group("key"), match.group("nav")
        method = request.method.upper()
        if key_text is None:
            if nav == "$count" and method == "GET":
                return Response(200, str(len(self._select_rows(entity, request.query))), {"Content-Type": "text/plain"})
            if nav is not None:
                raise ODataError(404, f"Resource not found for the segment '{nav}'.")
            if method == "GET":
                return self._get_collection(entity, request)
            if method == "POST":
                return self._create(entity, self._json_body(request), request)
            raise ODataError(405, f"The HTTP method '{method}' is not allowed on an entity set.")
        record = self._lookup(entity, key_text, request.query)
        if nav is not None:
            return self._navigate(entity, record, nav, request)
        if method == "GET":
            return self._single(entity, record, request.query)
        if method in ("PATCH", "PUT", "MERGE"):
            self._check_if_match(entity, record, request)
            values = coerce_body(entity, self.store.schema, self._json_body(request))
            _refuse_not_editable(entity, values, entity.not_editable)
            self.rules.update(entity.name, self._storage_record(entity, record), values)
            return Response(204)
        if method == "DELETE":
            self._check_if_match(entity, record, request)
            self.rules.delete(entity.name, self._storage_record(entity, record))
            return Response(204)
        raise ODataError(405, f"The HTTP method '{method}' is not allowed on an entity.")

    # ---- reads --------------------------------------------------------------------------------
    def _service_document(self) -> Response:
        sets = [{"name": n, "kind": "EntitySet", "url": n} for n in self.store.schema.entity_sets]
        return self._json_response({"@odata.context": f"{self.base_url}/data/$metadata", "value": sets})

    def rows(self, entity: EntitySet) -> list[dict[str, Any]]:
        """Stored rows in the entity's shape (ReleasedProductCreationsV2 is a view over released products)."""
        if entity.name != "ReleasedProductCreationsV2":
            return self.store.rows(entity.name)
        return [self._creation_row(entity, product) for product in self.store.rows("ReleasedProductsV2")]

    def _creation_row(self, entity: EntitySet, product: dict[str, Any]) -> dict[str, Any]:
        """One released product as a ReleasedProductCreationsV2 row (built per row: a key read is O(1))."""
        row = {k: v for k, v in product.items() if k in entity.properties or k.startswith("_")}
        for k in PRODUCT_TEXT_FIELDS:
            row[k] = ""
        key = (str(product["dataAreaId"]).casefold(), str(product["ItemNumber"]).casefold())
        row.update(self.store.product_texts.get(key, {}))
        return row

    def _storage_record(self, entity: EntitySet, record: dict[str, Any]) -> dict[str, Any]:
        if entity.name == "ReleasedProductCreationsV2":
            found = self.store.find("ReleasedProductsV2", record)
            assert found is not None
            return found
        return record

    def _scoped(self, entity: EntitySet, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = self.rows(entity)
        if entity.company_specific and query.get("cross-company", "").lower() != "true":
            company = self.store.default_company.casefold()
            rows = [r for r in rows if str(r["dataAreaId"]).casefold() == company]
        return rows

    def _select_rows(self, entity: EntitySet, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = self._scoped(entity, query)
        if query.get("$filter"):
            node = parse_filter(query["$filter"], entity, dict(self.store.schema.enums))
            rows = [r for r in rows if evaluate(node, r)]
        return rows

    def _lookup(self, entity: EntitySet, key_text: str, query: dict[str, str]) -> dict[str, Any]:
        key = parse_key(entity, key_text)
        other_company = entity.company_specific and key["dataAreaId"].casefold() != self.store.default_company
        if other_company and query.get("cross-company", "").lower() != "true":
            raise not_found(entity.name, key_text)  # other companies need cross-company=true
        if entity.name != "ReleasedProductCreationsV2":
            found = self.store.find(entity.name, key)
            if found is None:
                raise not_found(entity.name, key_text)
            return found
        product = self.store.find("ReleasedProductsV2", key)
        if product is None:
            raise not_found(entity.name, key_text)
        return self._creation_row(entity, product)

    def _get_collection(self, entity: EntitySet, request: Request) -> Response:
        query = request.query
        rows = self._select_rows(entity, query)
        rows = _order(rows, query.get("$orderby", ""), entity)
        skip = _non_negative(query, "$skip", 0) or 0
        top = _non_negative(query, "$top", None)
        select = _parse_select(query.get("$select", ""), entity)
        expand = self._parse_expand(query.get("$expand", ""), entity)
        take = self.page_size if top is None else min(top, self.page_size)
        page = rows[skip : skip + take]
        body: dict[str, Any] = {"@odata.context": self._context(entity, select)}
        if query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(rows)
        body["value"] = [self._shape(entity, r, select, expand, query) for r in page]
        remaining = len(rows) - (skip + len(page))
        wanted_more = top is None or top > len(page)
        if remaining > 0 and wanted_more and len(page) == take:
            next_query = dict(query)
            next_query["$skip"] = str(skip + len(page))
            if top is not None:
                next_query["$top"] = str(top - len(page))
            body["@odata.nextLink"] = f"{self.base_url}/data/{entity.name}?{urlencode(next_query, quote_via=quote)}"
        return self._json_response(body)

    def _single(self, entity: EntitySet, record: dict[str, Any], query: dict[str, str]) -> Response:
        select = _parse_select(query.get("$select", ""), entity)
        expand = self._parse_expand(query.get("$expand", ""), entity)
        body = {"@odata.context": self._context(entity, select) + "/$entity"}
        body.update(self._shape(entity, record, select, expand, query))
        return self._json_response(body)

    def _navigate(self, entity: EntitySet, record: dict[str, Any], nav: str, request: Request) -> Response:
        if (entity.name, nav) not in EXPANDABLE:
            raise ODataError(404, f"Resource not found for the segment '{nav}'.")
        lines = self.store.entity("SalesOrderLines")
        if request.method.upper() != "GET":
            # Strict reading: F&O support for writes through a navigation property is UNCONFIRMED, and the
            # line would get its SalesOrderNumber from the URL. Lines are POSTed to SalesOrderLines, each
            # carrying its order's number (docs/sandbox-d365.md).
            raise bad_request(
                f"The HTTP method '{request.method.upper()}' is not supported on the navigation property "
                f"'{nav}'; POST to {nav} with the order's SalesOrderNumber on each line."
            )
        rows = [r for r in self.store.rows("SalesOrderLines") if same_order(r, record)]
        value = [self._shape(lines, r, None, None, request.query) for r in rows]
        return self._json_response({"@odata.context": self._context(lines, None), "value": value})

    def _context(self, entity: EntitySet, select: list[str] | None) -> str:
        suffix = f"({','.join(select)})" if select else ""
        return f"{self.base_url}/data/$metadata#{entity.name}{suffix}"

    def _parse_expand(self, text: str, entity: EntitySet) -> dict[str, list[str] | None] | None:
        """`Nav` or `Nav($select=a,b)`, one level (F&O supports first-level $expand only)."""
        if not text:
            return None
        out: dict[str, list[str] | None] = {}
        for item in _split_top_level(text):
            match = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", item)
            if not match:
                raise bad_request(f"Bad $expand item '{item}'.")
            name, options = match.group(1), match.group(2)
            if name not in entity.navigation:
                raise ODataQueryError(
                    f"Could not find a property named '{name}' on type '{NAMESPACE}.{entity.entity_type}'."
                )
            if (entity.name, name) not in EXPANDABLE:
                raise bad_request(f"The sandbox does not implement $expand={name} on {entity.name}.")
            nested: list[str] | None = None
            if options:
                key, _, value = options.partition("=")
                if key.strip() != "$select" or "(" in value:
                    raise bad_request("Only $select is supported inside $expand (one level).")
                nested = _parse_select(value, self.store.entity("SalesOrderLines"))
            out[name] = nested
        return out

    def _shape(
        self, entity: EntitySet, record: dict[str, Any], select: list[str] | None,
        expand: dict[str, list[str] | None] | None, query: dict[str, str],
    ) -> dict[str, Any]:  # fmt: skip
        out: dict[str, Any] = {"@odata.etag": etag(int(record["_version"]), int(record["_recid"]))}
        fields = select or list(entity.properties)
        for name in fields:
            out[name] = record.get(name)
        for nav, nested in (expand or {}).items():
            lines = self.store.entity("SalesOrderLines")
            children = [r for r in self.store.rows("SalesOrderLines") if same_order(r, record)]
            children.sort(key=lambda r: _sort_key(r.get("LineNumber")))
            out[nav] = [self._shape(lines, r, nested, None, query) for r in children]
        return out

    # ---- writes -------------------------------------------------------------------------------
    def _create(self, entity: EntitySet, body: Any, request: Request) -> Response:
        values = coerce_body(entity, self.store.schema, body)
        _refuse_not_editable(entity, values, entity.not_editable_on_create)
        record = self.rules.create(entity.name, values)
        if entity.name == "ReleasedProductCreationsV2":
            record = self._creation_row(entity, record)
        location = f"{self.base_url}/data/{entity.name}({format_key(entity, record)})"
        payload = {"@odata.context": f"{self.base_url}/data/$metadata#{entity.name}/$entity"}
        payload.update(self._shape(entity, record, None, None, request.query))
        response = self._json_response(payload, status=201)
        response.headers.update({"Location": location, "OData-EntityId": location})
        return response

    def _check_if_match(self, entity: EntitySet, record: dict[str, Any], request: Request) -> None:
        wanted = {k.lower(): v for k, v in request.headers.items()}.get("if-match")
        if wanted and wanted != "*" and wanted != etag(int(record["_version"]), int(record["_recid"])):
            # F&O's answer to a stale If-Match is UNCONFIRMED; standard OData answers 412.
            raise ODataError(412, "The etag value in the request header does not match with the current etag value.")

    @staticmethod
    def _json_body(request: Request) -> Any:
        """A write's JSON body. Web API picks the body's formatter by Content-Type: anything but JSON (or
        none, read as application/octet-stream) is refused with 415 before the entity is touched
        (F&O's exact answer is UNCONFIRMED; Web API's own wording)."""
        given = {k.lower(): v for k, v in request.headers.items()}.get("content-type", "")
        media = given.split(";")[0].strip().lower() or "application/octet-stream"
        if media != "application/json":
            raise WebApiError(415, f"The request entity's media type '{media}' is not supported for this resource.")
        try:
            return json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}") from exc

    @staticmethod
    def _json_response(body: dict[str, Any], status: int = 200) -> Response:
        return Response(status, body, {"Content-Type": JSON_TYPE, "OData-Version": "4.0"})


# IIS (F&O's host) refuses long query strings (maxQueryString 2048 by default); the simulator applies
# that bound to the whole URL, the strictest reading.
MAX_URL_LENGTH = 2048
URL_TOO_LONG_HTML = (
    "<html><head><title>IIS 10.0 Detailed Error - 404.15 - Not Found</title></head><body><h3>HTTP Error 404.15 - "
    "Not Found</h3><h4>The request filtering module is configured to deny a request where the query string is "
    "too long.</h4></body></html>"
)


def url_too_long(url: str) -> Response | None:
    if len(url) <= MAX_URL_LENGTH:
        return None
    return Response(404, URL_TOO_LONG_HTML.encode(), {"Content-Type": "text/html"})


def no_route(url: str) -> Response:
    """ASP.NET Web API's answer when no route matches (not an OData envelope), as F&O sends it."""
    message = (
        f"No HTTP resource was found that matches the request URI '{url}'. No route data was found for this request."
    )
    return Response(404, {"Message": message}, {"Content-Type": JSON_TYPE})


def _refuse_not_editable(entity: EntitySet, values: dict[str, Any], names: tuple[str, ...]) -> None:
    """A value for a property the $metadata marks not editable (AllowEdit / AllowEditOnCreate false) is
    refused: whether F&O ignores or refuses it is UNCONFIRMED, so the strict reading (docs/sandbox-d365.md)."""
    given = sorted(set(values) & set(names))
    if given:
        raise bad_request(
            f"The property '{given[0]}' of type '{NAMESPACE}.{entity.entity_type}' is not editable "
            "($metadata: AllowEdit or AllowEditOnCreate false); leave it out of the request body."
        )


def _non_negative(query: dict[str, str], name: str, default: int | None) -> int | None:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        value = -1
    if value < 0:
        raise bad_request(f"Invalid value '{query[name]}' for {name} query option: a non-negative integer is expected.")
    return value


def _parse_select(text: str, entity: EntitySet) -> list[str] | None:
    if not text or text.strip() == "*":
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in entity.properties:
            raise ODataQueryError(
                f"Could not find a property named '{name}' on type '{NAMESPACE}.{entity.entity_type}'."
            )
    return names


def _order(rows: list[dict[str, Any]], text: str, entity: EntitySet) -> list[dict[str, Any]]:
    """Stable multi-key sort by $orderby. Without it, SQL Server picks the order; the simulator uses an
    order that a write changes (least recently written first), so $skip paging without $orderby can
    repeat or skip rows when records change between pages, as it can on F&O."""
    clauses: list[tuple[str, bool]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        bits = part.split()
        if len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")) or bits[0] not in entity.properties:
            raise ODataQueryError(f"Bad $orderby clause '{part}' for type '{NAMESPACE}.{entity.entity_type}'.")
        clauses.append((bits[0], len(bits) == 2 and bits[1] == "desc"))
    if not clauses:
        return sorted(rows, key=lambda r: (int(r.get("_version", 0)), int(r.get("_recid", 0))))
    ordered = list(rows)
    for name, desc in reversed(clauses):
        ordered.sort(key=lambda r, n=name: _sort_key(r.get(n)), reverse=desc)  # type: ignore[misc]
    return ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value).casefold())


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return [p for p in parts if p.strip()]
