"""API v1 routes still in SPEC-v1: webhooks, users/me, currencies; removed v1 entity routes answer 410.

v1 answers on both `/v1/...` and `/api/v1/...` (migration guide). Webhook endpoints use their own
error shape (`status`, `errors`), as SPEC-v1 documents.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .context import path_id, read_json, sim
from .envelope import ApiError, gone, ok
from .scopes import REMOVED_V1, V1_PREFIXES

routes = web.RouteTableDef()
MAX_WEBHOOKS = 40  # per user (webhooks v2 guide); over it: 422 "Webhooks limit reached"
ACTIONS = ("create", "change", "delete", "*")
OBJECTS = ("activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage", "user", "*")


def _webhook_errors(errors: dict[str, list[str]], status: int = 400) -> ApiError:
    return ApiError(status, {"status": "error", "success": False, "errors": errors})


async def _webhook_body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/x-www-form-urlencoded":  # v1 POST also accepts forms
        return dict(await request.post())
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _webhook_errors({"body": ["must be a JSON object"]})
    return body


async def list_webhooks(request: web.Request) -> web.Response:
    hooks = list(sim(request).store.webhooks.values())
    return web.json_response({"status": "ok", "success": True, "data": hooks})


async def create_webhook(request: web.Request) -> web.Response:
    s = sim(request)
    body = await _webhook_body(request)
    errors: dict[str, list[str]] = {}
    allowed = {"subscription_url", "event_action", "event_object", "name", "user_id", "http_auth_user",
               "http_auth_password", "version"}  # fmt: skip
    for key in sorted(set(body) - allowed):
        errors[key] = ["is not allowed"]
    url = body.get("subscription_url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        errors["subscription_url"] = ["invalid or non-reachable URL"]
    if body.get("event_action") not in ACTIONS:
        errors["event_action"] = [f"must be one of {', '.join(ACTIONS)}"]
    if body.get("event_object") not in OBJECTS:
        errors["event_object"] = [f"must be one of {', '.join(OBJECTS)}"]
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 255:
        errors["name"] = ["is required (a string of at most 255 characters)"]
    user_id = body.get("user_id")
    is_int = isinstance(user_id, int) and not isinstance(user_id, bool)
    is_digits = isinstance(user_id, str) and user_id.isdigit()  # form bodies carry strings
    if user_id is not None and not (is_int or is_digits):
        errors["user_id"] = ["must be an integer"]
    version = body.get("version", "2.0")
    if version not in ("1.0", "2.0"):
        errors["version"] = ["must be 1.0 or 2.0"]
    for key in ("http_auth_user", "http_auth_password"):
        if body.get(key) is not None and not isinstance(body[key], str):
            errors[key] = ["must be a string"]
    if errors:
        raise _webhook_errors(errors)
    if len(s.store.webhooks) >= MAX_WEBHOOKS:
        raise ApiError(422, {"success": False, "error": "Webhooks limit reached"})
    user = s.store.default_user
    hook_id = s.store.next_id("webhook")
    hook = {
        "id": hook_id, "company_id": user["company_id"], "owner_id": user["id"],
        "user_id": int(body.get("user_id") or user["id"]), "event_action": body["event_action"],
        "event_object": body["event_object"], "subscription_url": url, "version": version, "is_active": 1,
        "add_time": s.store.now()[:19] + ".000Z", "remove_time": None, "type": "general",
        "http_auth_user": body.get("http_auth_user"), "http_auth_password": body.get("http_auth_password"),
        "remove_reason": None, "last_delivery_time": None, "last_http_status": None, "admin_id": user["id"],
        "name": name,
    }  # fmt: skip
    s.store.webhooks[hook_id] = hook
    return web.json_response({"status": "ok", "success": True, "data": hook}, status=201)


async def delete_webhook(request: web.Request) -> web.Response:
    store = sim(request).store
    if store.webhooks.pop(path_id(request), None) is None:
        raise _webhook_errors({"id": ["not found"]}, status=404)
    return web.json_response({"status": "ok", "success": True})


async def users_me(request: web.Request) -> web.Response:
    user = sim(request).store.default_user
    created = "2024-01-01 00:00:00"
    data = {
        "id": user["id"], "name": user["name"], "default_currency": user["default_currency"],
        "locale": user["locale"], "lang": 1, "email": user["email"], "phone": None, "activated": True,
        "last_login": created, "created": created, "modified": created, "has_created_company": True,
        "access": [{"app": "sales", "admin": True, "permission_set_id": "sandbox-admin"}], "active_flag": True,
        "timezone_name": user["timezone_name"], "timezone_offset": "+02:00", "role_id": 1, "icon_url": None,
        "is_you": True, "is_deleted": False, "company_id": user["company_id"], "company_name": user["company_name"],
        "company_domain": user["company_domain"], "company_country": "FI", "company_industry": "Wholesale",
        "language": {"language_code": "en", "country_code": "US"},
    }  # fmt: skip
    return ok(data)


async def currencies(request: web.Request) -> web.Response:
    term = request.query.get("term", "").lower()
    items = [
        {"id": c["id"], "code": c["code"], "name": c["name"], "decimal_points": c["decimal_points"],
         "symbol": c["symbol"], "active_flag": True, "is_custom_flag": False}
        for c in sim(request).store.currencies.values()
        if not term or term in c["code"].lower() or term in c["name"].lower()
    ]  # fmt: skip
    return ok(items)


async def removed(request: web.Request) -> web.Response:
    """v1 deals/persons/organizations/products/... left SPEC-v1 in 2026 (Appendix A.3): model them as gone."""
    raise gone()


for _prefix in V1_PREFIXES:
    routes.get(f"{_prefix}/webhooks")(list_webhooks)
    routes.post(f"{_prefix}/webhooks")(create_webhook)
    routes.delete(f"{_prefix}/webhooks/{{id}}")(delete_webhook)
    routes.get(f"{_prefix}/users/me")(users_me)
    routes.get(f"{_prefix}/currencies")(currencies)
    for _entity in REMOVED_V1:
        routes.route("*", f"{_prefix}/{_entity}")(removed)
        routes.route("*", f"{_prefix}/{_entity}/{{tail:.*}}")(removed)
