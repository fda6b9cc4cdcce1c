"""The function app's admin routes through their decorated handlers (as the Functions host calls them):
GET /api/admin/doctor, GET /api/admin/ui, POST /api/admin/ui/replay."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E


async def call(e2e: E2E, name: str, method: str, route: str, *, body: bytes = b"", **params: str) -> func.HttpResponse:
    # The request URL is the local runner's: the doctor takes the app's URL from it (and posts D365's
    # test event there), so nothing leaves loopback.
    url = f"{e2e.host.base_url}/api/{route}"
    req = func.HttpRequest(
        method=method, url=url, params=params, body=body, headers={"x-functions-key": e2e.host.admin_key}
    )
    response: func.HttpResponse = await app_function(name).get_user_function()(req)
    return response


async def test_doctor_route_answers_the_report_as_json(e2e: E2E) -> None:
    response = await call(e2e, "admin_doctor", "GET", "admin/doctor")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    report = json.loads(response.get_body())
    rows = {c["name"]: c for c in report["checks"]}
    assert rows["d365.auth"]["status"] == "pass" and rows["pipedrive.auth"]["status"] == "pass"
    assert rows["app.d365_events"]["status"] == "pass"
    # No webhook yet: the row names this app's own webhook URL (taken from the request) in its fix.
    assert rows["pipedrive.webhook"]["status"] == "fail" and report["ok"] is False
    assert f"register-webhook {e2e.webhook_url}" in rows["pipedrive.webhook"]["fix"]
    await e2e.register_webhook()
    report = json.loads((await call(e2e, "admin_doctor", "GET", "admin/doctor")).get_body())
    assert report["ok"] is True


async def test_page_and_form_replay_through_the_function_handlers(e2e: E2E) -> None:
    await e2e.win(108)
    await e2e.drain()
    page = await call(e2e, "admin_ui", "GET", "admin/ui", code=e2e.host.admin_key, deal="108")
    html = page.get_body().decode()
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "has no code; set its code to a D365 item number" in html
    assert "build.failed" in html  # the deal's audit trail
    assert f"action='/api/admin/ui/replay?code={e2e.host.admin_key}'" in html

    redirect = await call(
        e2e, "admin_ui_replay", "POST", "admin/ui/replay", body=b"deal_id=108", code=e2e.host.admin_key
    )
    assert redirect.status_code == 303
    location = urlsplit(redirect.headers["Location"])
    assert location.path == "/api/admin/ui"
    query = parse_qs(location.query)
    assert query["code"] == [e2e.host.admin_key] and query["msg"] == ["re-queued: 108"]
    assert await e2e.queue_depth() == 1

    refused = await call(
        e2e, "admin_ui_replay", "POST", "admin/ui/replay", body=b"deal_id=12ab", code=e2e.host.admin_key
    )
    assert "not replayed" in parse_qs(urlsplit(refused.headers["Location"]).query)["msg"][0]
    assert await e2e.queue_depth() == 1


async def test_page_escapes_what_it_shows(e2e: E2E) -> None:
    page = await call(e2e, "admin_ui", "GET", "admin/ui", code=e2e.host.admin_key, deal="<script>")
    html = page.get_body().decode()
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_hand_edited_audit_rows_do_not_take_the_page_or_the_cli_down(e2e: E2E) -> None:
    """Rows someone edited in Storage Explorer (unknown level, a row key that is no time, no event, a detail
    nested past the JSON parser's depth, markup) are shown as `audit.malformed`; the rest of the trail stays."""
    from connector.state.tables import encode_key
    from tests.e2e.test_cli import cli

    await e2e.rt.state.audit.append("deal-101", "build.started", correlation_id="c-1")
    table = await e2e.rt.state.audit._table.client()
    deep = "[" * 5000 + "]" * 5000
    for row_key, extra in [
        ("00000000000000000001-a", {"Event": "x", "Level": "x onmouseover=alert(1)"}),
        ("not-a-time", {"Event": "<b>edited</b>"}),
        ("00000000000000000002-b", {"Level": "info"}),
        ("00000000000000000003-c", {"Event": "x", "Detail": '{"a": ' + deep + "}"}),
    ]:
        await table.create_entity({"PartitionKey": encode_key("deal-101"), "RowKey": row_key, **extra})

    page = await call(e2e, "admin_ui", "GET", "admin/ui", code=e2e.host.admin_key, deal="101")
    html = page.get_body().decode()
    assert page.status_code == 200, html[:300]
    assert html.count("audit.malformed") == 4 and "build.started" in html
    assert "<b>edited" not in html and " onmouseover=" not in html

    code, trail, text = await cli(e2e, "audit", "101", "--json")
    assert code == 0, text
    assert [row["event"] for row in trail].count("audit.malformed") == 4
    assert any("Level" in row["detail"].get("problem", "") or "level" in row["detail"].get("problem", "")
               for row in trail)  # fmt: skip


async def test_a_cross_site_form_post_is_refused_and_queues_nothing(e2e: E2E) -> None:
    """CSRF: another site's page posting the replay form (with a leaked key) over the local runner's HTTP."""
    import httpx

    await e2e.win(108)
    await e2e.drain()
    url = f"{e2e.host.base_url}/api/admin/ui/replay?code={e2e.host.admin_key}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient() as client:
        for headers in (
            {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "https://evil.example"},  # a browser that sends no Sec-Fetch-Site
            {"Origin": "null"},  # a sandboxed frame or a data: page
        ):
            answer = await client.post(url, content=b"deal_id=108", headers={**form, **headers})
            assert answer.status_code == 403, (headers, answer.text)
            assert "cross-site" in answer.json()["error"]
            assert await e2e.queue_depth() == 0
        same = {"Sec-Fetch-Site": "same-origin", "Origin": e2e.host.base_url}
        answer = await client.post(url, content=b"deal_id=108", headers={**form, **same})
        assert answer.status_code == 303 and answer.headers["Referrer-Policy"] == "no-referrer"
        assert await e2e.queue_depth() == 1
        # A browser without Sec-Fetch-Site on the app's custom domain, named by the proxy in front of it.
        proxied = {"Origin": "https://erp-sync.example.com", "X-Forwarded-Host": "erp-sync.example.com"}
        answer = await client.post(url, content=b"deal_id=108", headers={**form, **proxied})
        assert answer.status_code == 303, answer.text
        page = await client.get(f"{e2e.host.base_url}/api/admin/ui", params={"code": e2e.host.admin_key})
    # The page's URLs carry the key: no Referer takes it elsewhere; no script runs, no other site frames it.
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
