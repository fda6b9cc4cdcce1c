"""Field definition routes: v2 `/api/v2/{entity}Fields` (cursor, field_code) and v1 `/v1/{entity}Fields`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .context import path_id, sim
from .customfields import FieldDef
from .envelope import ApiError, error_body, ok, ok_list
from .paging import cursor_page, offset_page
from .scopes import V1_PREFIXES

routes = web.RouteTableDef()
ENTITIES = {"deal": "dealFields", "organization": "organizationFields", "person": "personFields",
            "product": "productFields"}  # fmt: skip


def _v1_time(value: str) -> str:
    return value[:10] + " " + value[11:19]


def render_v2(fdef: FieldDef) -> dict[str, Any]:
    options = None
    if fdef.options is not None:
        options = [
            {"id": o["id"], "label": o["label"], "color": None, "add_time": fdef.add_time, "update_time": fdef.add_time}
            if fdef.custom
            else {"id": o["id"], "label": o["label"]}
            for o in fdef.options
        ]
    subfields = None
    if fdef.field_type == "monetary":
        subfields = [
            {"field_code": "value" if not fdef.custom else fdef.code, "field_name": fdef.name, "field_type": "double"},
            {"field_code": "currency" if not fdef.custom else f"{fdef.code}_currency",
             "field_name": f"Currency of {fdef.name}", "field_type": "varchar"},
        ]  # fmt: skip
    return {
        "field_name": fdef.name,
        "field_code": fdef.code,
        "description": None,
        "field_type": fdef.field_type,
        "options": options,
        "subfields": subfields,
        "is_custom_field": fdef.custom,
        "is_optional_response_field": False,
    }


def render_v1(fdef: FieldDef) -> dict[str, Any]:
    return {
        "id": fdef.id, "key": fdef.code, "name": fdef.name, "order_nr": fdef.order_nr, "field_type": fdef.field_type,
        "add_time": _v1_time(fdef.add_time), "update_time": _v1_time(fdef.add_time), "last_updated_by_user_id": 1,
        "created_by_user_id": 1, "active_flag": True, "edit_flag": fdef.custom, "index_visible_flag": True,
        "details_visible_flag": True, "add_visible_flag": True, "important_flag": False, "bulk_edit_allowed": True,
        "searchable_flag": False, "filtering_allowed": True, "sortable_flag": True, "mandatory_flag": False,
        "options": [dict(o) for o in fdef.options] if fdef.options is not None else None, "options_deleted": [],
        "is_subfield": False,
    }  # fmt: skip


def _register(entity: str, name: str) -> None:
    async def list_v2(request: web.Request) -> web.Response:
        defs = list(sim(request).store.fields[entity].values())
        wrapped = [{"id": i, "def": d} for i, d in enumerate(defs, start=1)]
        page, cursor = cursor_page(wrapped, request.query, sort_fields=("id",))
        return ok_list([render_v2(item["def"]) for item in page], cursor)

    async def get_v2(request: web.Request) -> web.Response:
        fdef = sim(request).store.fields[entity].get(request.match_info["field_code"])
        if fdef is None:
            raise ApiError(404, error_body("Field not found", info="Object was not found."))
        return ok(render_v2(fdef))

    async def list_v1(request: web.Request) -> web.Response:
        defs = [render_v1(d) for d in sim(request).store.fields[entity].values()]
        page, pagination = offset_page(defs, request.query)
        return ok(page, {"pagination": pagination})

    async def get_v1(request: web.Request) -> web.Response:
        wanted = path_id(request)
        for fdef in sim(request).store.fields[entity].values():
            if fdef.id == wanted:
                return ok(render_v1(fdef))
        raise ApiError(404, error_body("Field not found"))

    routes.get(f"/api/v2/{name}")(list_v2)
    routes.get(f"/api/v2/{name}/{{field_code}}")(get_v2)
    for prefix in V1_PREFIXES:
        routes.get(f"{prefix}/{name}")(list_v1)
        routes.get(f"{prefix}/{name}/{{id}}")(get_v1)


for _entity, _name in ENTITIES.items():
    _register(_entity, _name)
