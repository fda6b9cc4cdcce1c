"""GET /api/admin/doctor, GET /api/admin/ui and POST /api/admin/ui/replay (function key, checked by the
host in Azure and by the local runner's admin check).

The page's replay form is turned into the JSON body of POST /api/admin/replay and handled by that
route's own handler, so both share one validation and one replay path.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import parse_qs, urlsplit

from connector.functions.http import HttpIn, HttpOut, json_error, json_response
from connector.inputs import BadInput, clean_text

_DEAL_ID = re.compile(r"^[0-9]{1,18}$")
# The page's URLs carry the function key (`?code=`): no Referer may take it elsewhere. No scripts at all.
NO_LEAK = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
HTML = {
    **NO_LEAK,
    "Content-Type": "text/html; charset=utf-8",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
_SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site of the page's own form, or of a URL typed in


def function_key(req: HttpIn) -> str | None:
    key = req.header("x-functions-key") or req.params.get("code") or None
    return clean_text(key) if key else None


def _param(req: HttpIn, name: str) -> str:
    return clean_text(req.params.get(name) or "")


def app_url(req: HttpIn) -> str:
    """This app's public base URL: the host's WEBSITE_HOSTNAME in Azure (behind its front end), else the request's origin."""
    host = os.environ.get("WEBSITE_HOSTNAME")
    if host:
        return f"https://{host}"
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


async def handle_doctor(req: HttpIn) -> HttpOut:
    from connector.doctor import run_doctor
    from connector.runtime import get_runtime

    report = await run_doctor(await get_runtime(), app_url=app_url(req), function_key=function_key(req))
    return json_response(200, report.as_json())


async def handle_admin_ui(req: HttpIn) -> HttpOut:
    from connector.admin_page import render
    from connector.admin_view import admin_view
    from connector.runtime import get_runtime

    deal_text = _param(req, "deal").strip()
    message = _param(req, "msg")[:500] or None
    deal_id = None
    if deal_text:
        if _DEAL_ID.match(deal_text) and int(deal_text) > 0:
            deal_id = int(deal_text)
        else:
            message = f"deal id must be a positive whole number, not {deal_text[:40]!r}"
    with_doctor = _param(req, "doctor") == "1"
    rt = await get_runtime()
    view = await admin_view(
        rt, deal_id=deal_id, with_doctor=with_doctor, app_url=app_url(req), function_key=function_key(req)
    )
    return HttpOut(200, render(view, key=function_key(req), message=message).encode(), HTML)


def cross_site(req: HttpIn) -> bool:
    """A browser's post from another site's page (CSRF): Sec-Fetch-Site says so, or, from a browser that does
    not send it, an Origin that is not this app. A request with neither header is not from a web page."""
    site = req.header("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in _SAME_SITE
    origin = req.header("origin")
    if origin is None:
        return False
    # The names this app is reached by (a custom domain arrives as Host or, behind a proxy, X-Forwarded-Host /
    # X-Original-Host): a page cannot set these on a cross-site form post, so trusting them opens nothing.
    named = ("host", "x-forwarded-host", "x-original-host")
    hosts = {h.strip().lower() for h in (*map(req.header, named), os.environ.get("WEBSITE_HOSTNAME")) if h}
    return urlsplit(origin.strip()).netloc.lower() not in hosts


async def handle_admin_ui_replay(req: HttpIn) -> HttpOut:
    from connector.admin_page import UI_PATH, url
    from connector.functions.admin import handle_replay

    if cross_site(req):
        # The key in the form's URL is the real guard; this keeps another site's page from using a leaked one.
        return json_error(403, "a replay must be posted from the admin page itself (cross-site form post refused)")
    try:
        fields = parse_qs(req.body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more fields than any form of ours has
        raise BadInput("the replay form has too many fields") from None
    form = {k: v[-1] for k, v in fields.items()}
    body: dict[str, object] = {}
    deal = form.get("deal_id", "").strip()
    if deal:
        if not _DEAL_ID.match(deal):
            return _back(url(UI_PATH, function_key(req), msg=f"not replayed: {deal[:40]!r} is not a deal id"))
        body["deal_ids"] = [int(deal)]
    if form.get("failed") == "1":
        body["failed"] = True
    if form.get("poison") == "1":
        body["poison"] = True
    out = await handle_replay(HttpIn("POST", req.url, json.dumps(body).encode(), {}, {}))
    if out.status >= 400:
        text = f"not replayed: {out.json.get('error', out.status)}"
    else:
        result = out.json
        queued = ", ".join(map(str, result.get("requeued", []))) or "none"
        skipped = "; ".join(f"deal {k} is {v}" for k, v in result.get("skipped", {}).items())
        text = f"re-queued: {queued}" + (f"; skipped: {skipped}" if skipped else "")
        if result.get("poison_requeued"):
            text += f"; poison messages re-queued: {result['poison_requeued']}"
    return _back(url(UI_PATH, function_key(req), msg=text))


def _back(location: str) -> HttpOut:
    """303 See Other: the browser GETs the page again, so a reload never repeats the replay."""
    return HttpOut(303, b"", {"Location": location, **NO_LEAK})
