"""API v2 entity routes: deals, deal products, organizations, persons, products, search."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from .context import path_id, read_json, sim
from .customfields import with_labels
from .envelope import bad_request, ok, ok_list
from .paging import cursor_page, parse_bool, parse_ids, parse_int, parse_limit
from .search_index import field_values
from .store import Store, iso

routes = web.RouteTableDef()
V2 = "/api/v2"


# The documented form (SPEC-v2: "In RFC3339 format, e.g. 2025-01-01T10:20:00Z"), whole seconds: a third party
# reports fractional seconds refused as "not a valid datetime" (UNCONFIRMED), so the simulator refuses them.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")


def _time(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    problem = f"{name}: '{raw}' is not a valid datetime (RFC 3339 in whole seconds, e.g. 2025-01-01T10:20:00Z)"
    if not _RFC3339.fullmatch(raw):
        raise bad_request(problem)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise bad_request(problem) from exc
    return iso(moment)


def _present(store: Store, entity: str, record: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """Apply the read options that reshape one record: custom_fields selection, option labels."""
    out = dict(record)
    custom = dict(record.get("custom_fields") or {})
    if query.get("custom_fields"):
        wanted = query["custom_fields"].split(",")
        if len(wanted) > 15:
            raise bad_request("custom_fields: at most 15 keys")
        custom = {k: v for k, v in custom.items() if k in wanted}
    if parse_bool(query, "include_option_labels"):
        custom = with_labels(store.fields[entity], custom)
    out["custom_fields"] = custom
    return out


def _filter(items: list[dict[str, Any]], query: Mapping[str, str], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    ids = parse_ids(query, "ids")
    if ids is not None:
        items = [r for r in items if r["id"] in ids]
    for key in keys:
        wanted = parse_int(query, key)
        if wanted is not None:
            items = [r for r in items if r.get(key) == wanted]
    since, until = _time(query, "updated_since"), _time(query, "updated_until")
    if since:
        items = [r for r in items if r["update_time"] >= since]  # inclusive
    if until:
        items = [r for r in items if r["update_time"] < until]  # exclusive
    return items


def _list(request: web.Request, entity: str, items: list[dict[str, Any]], keys: tuple[str, ...]) -> web.Response:
    store = sim(request).store
    page, cursor = cursor_page(_filter(items, request.query, keys), request.query)
    return ok_list([_present(store, entity, r, request.query) for r in page], cursor)


def _delete(entity: str) -> Any:
    async def delete_(request: web.Request) -> web.Response:
        """Soft delete (`is_deleted`), answered `{"success": true, "data": {"id": …}}` (SPEC-v2)."""
        record_id = path_id(request)
        sim(request).store.delete(entity, record_id)
        return ok({"id": record_id})

    return delete_


# ---- deals -------------------------------------------------------------------------------------
@routes.get(f"{V2}/deals")
async def list_deals(request: web.Request) -> web.Response:
    return _deals(request, archived=False)


@routes.get(f"{V2}/deals/archived")
async def list_archived_deals(request: web.Request) -> web.Response:
    """Archived deals, only here since Jul 15 2025 (changelog: "archived deals and leads will not be
    returned in existing endpoints"); the same filters and paging as `GET /deals` (SPEC-v2), cost 20."""
    return _deals(request, archived=True)


def _deals(request: web.Request, *, archived: bool) -> web.Response:
    store = sim(request).store
    raw_status = request.query.get("status")
    statuses = raw_status.split(",") if raw_status else ["open", "won", "lost"]
    if any(s not in ("open", "won", "lost", "deleted") for s in statuses):
        raise bad_request("status: must be a comma-separated list of open, won, lost, deleted")
    deals = [
        d
        for d in store.tables["deal"].values()
        if bool(d["is_archived"]) is archived
        and (("deleted" in statuses) if d["is_deleted"] else d["status"] in statuses)
    ]
    keys = ("owner_id", "person_id", "org_id", "pipeline_id", "stage_id")
    return _list(request, "deal", deals, keys)


@routes.get(f"{V2}/deals/products")
async def list_products_of_deals(request: web.Request) -> web.Response:
    store = sim(request).store
    deal_ids = parse_ids(request.query, "deal_ids")
    if deal_ids is None:
        raise bad_request("deal_ids: is required")
    lines = [line for line in store.tables["deal_product"].values() if line["deal_id"] in deal_ids]
    page, cursor = cursor_page(lines, request.query, sort_fields=("id", "deal_id", "add_time", "update_time"))
    return ok_list([dict(line) for line in page], cursor)


@routes.get(f"{V2}/deals/{{id:\\d+}}")
async def get_deal(request: web.Request) -> web.Response:
    store = sim(request).store
    return ok(_present(store, "deal", store.get("deal", path_id(request)), request.query))


@routes.post(f"{V2}/deals")
async def create_deal(request: web.Request) -> web.Response:
    store = sim(request).store
    return ok(_present(store, "deal", store.create("deal", await read_json(request)), {}))


@routes.patch(f"{V2}/deals/{{id:\\d+}}")
async def patch_deal(request: web.Request) -> web.Response:
    """Archived deals "will not be editable through the API" (changelog, Jul 2025); the status and text of
    that refusal are UNCONFIRMED, so any 4xx a client sees here is only a stand-in."""
    store = sim(request).store
    if store.get("deal", path_id(request)).get("is_archived"):
        raise bad_request("Archived deals cannot be edited")
    record = store.update("deal", path_id(request), await read_json(request))
    return ok(_present(store, "deal", record, {}))


routes.delete(f"{V2}/deals/{{id:\\d+}}")(_delete("deal"))


@routes.get(f"{V2}/deals/{{id:\\d+}}/products")
async def list_deal_products(request: web.Request) -> web.Response:
    store = sim(request).store
    deal = store.get("deal", path_id(request))
    lines = store.deal_products(deal["id"])
    page, cursor = cursor_page(lines, request.query, sort_fields=("id", "add_time", "update_time", "order_nr"))
    return ok_list([dict(line) for line in page], cursor)


@routes.post(f"{V2}/deals/{{id:\\d+}}/products")
async def add_deal_product(request: web.Request) -> web.Response:
    store = sim(request).store
    return ok(store.add_deal_product(path_id(request), await read_json(request)), status=201)


# ---- organizations, persons, products ----------------------------------------------------------
def _crud(entity: str, plural: str, keys: tuple[str, ...], create_status: int) -> None:
    async def list_(request: web.Request) -> web.Response:
        return _list(request, entity, sim(request).store.visible(entity), keys)

    async def get_(request: web.Request) -> web.Response:
        store = sim(request).store
        return ok(_present(store, entity, store.get(entity, path_id(request)), request.query))

    async def create_(request: web.Request) -> web.Response:
        store = sim(request).store
        return ok(_present(store, entity, store.create(entity, await read_json(request)), {}), status=create_status)

    async def patch_(request: web.Request) -> web.Response:
        store = sim(request).store
        record = store.update(entity, path_id(request), await read_json(request))
        return ok(_present(store, entity, record, {}))

    routes.get(f"{V2}/{plural}")(list_)
    routes.get(f"{V2}/{plural}/{{id:\\d+}}")(get_)
    routes.post(f"{V2}/{plural}")(create_)
    routes.patch(f"{V2}/{plural}/{{id:\\d+}}")(patch_)
    routes.delete(f"{V2}/{plural}/{{id:\\d+}}")(_delete(entity))


# v2 POST /organizations and /persons answer 200, POST /products 201 (SPEC-v2).
_crud("organization", "organizations", ("owner_id",), 200)
_crud("person", "persons", ("owner_id", "org_id"), 200)
_crud("product", "products", ("owner_id",), 201)


# ---- search ------------------------------------------------------------------------------------
def _search(request: web.Request, entity: str, allowed: tuple[str, ...]) -> tuple[list[Any], str | None]:
    store, query = sim(request).store, request.query
    term = query.get("term", "")
    exact = bool(parse_bool(query, "exact_match"))
    if len(term) < (1 if exact else 2):
        raise bad_request("term: minimum 2 characters (or 1 if using exact_match)")
    fields = query.get("fields", ",".join(allowed)).split(",")
    if any(f not in allowed for f in fields):
        raise bad_request(f"fields: must be a comma-separated list of {', '.join(allowed)}")
    needle = term.lower()
    hits: list[dict[str, Any]] = []
    if exact:  # the index answers exact searches (a scan per search does not scale to a catalogue)
        for record_id in store.search.exact(entity, fields, needle):
            record = store.tables[entity].get(record_id)
            if record is not None and not record.get("is_deleted"):
                hits.append({"id": record_id, "score": 1.0, "record": record})
    else:
        searchable = store.searchable(entity)
        for record in store.visible(entity):
            found = [v for name in fields for v in field_values(record, name, searchable)]
            if any(needle in v for v in found):
                hits.append({"id": record["id"], "score": 1.0 if needle in found else 0.5, "record": record})
    hits.sort(key=lambda h: (-float(h["score"]), int(h["id"])))
    limit = parse_limit(query)
    start = parse_int({"start": query["cursor"]} if query.get("cursor") else {}, "start") or 0
    page = hits[start : start + limit]
    cursor = str(start + limit) if start + limit < len(hits) else None  # opaque to clients
    return page, cursor


@routes.get(f"{V2}/products/search")
async def search_products(request: web.Request) -> web.Response:
    page, cursor = _search(request, "product", ("code", "custom_fields", "name"))
    items = [
        {
            "result_score": hit["score"],
            "item": {
                "id": r["id"], "type": "product", "name": r["name"], "code": r["code"],
                "visible_to": r["visible_to"], "owner": {"id": r["owner_id"]},
                "custom_fields": [v for v in r["custom_fields"].values() if isinstance(v, str)],
            },
        }
        for hit in page
        for r in [hit["record"]]
    ]  # fmt: skip
    return ok({"items": items}, {"next_cursor": cursor})


@routes.get(f"{V2}/organizations/search")
async def search_organizations(request: web.Request) -> web.Response:
    page, cursor = _search(request, "organization", ("address", "custom_fields", "notes", "name"))
    items = [
        {
            "result_score": hit["score"],
            "item": {
                "id": r["id"], "type": "organization", "name": r["name"],
                "address": (r.get("address") or {}).get("value"), "visible_to": r["visible_to"],
                "owner": {"id": r["owner_id"]},
                "custom_fields": [v for v in r["custom_fields"].values() if isinstance(v, str)], "notes": [],
            },
        }
        for hit in page
        for r in [hit["record"]]
    ]  # fmt: skip
    return ok({"items": items}, {"next_cursor": cursor})
