"""Azure Functions entry point (Python v2 model): thin bindings that adapt and delegate.

Cold start matters (Flex has a 30 s host-initialisation limit): only azure.functions and the stdlib
logging setup are imported here; each handler imports its connector module when it first runs.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from connector.logging_setup import configure_logging

configure_logging()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def json_response(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Up or down, nothing else (anonymous): 200 when storage answers, else 503."""
    from connector.functions.health import is_up

    up = await is_up()
    return json_response({"status": "up" if up else "down"}, 200 if up else 503)


@app.function_name("health_details")
@app.route(route="health/details", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def health_details(req: func.HttpRequest) -> func.HttpResponse:
    """Storage, queues, mapping and versions with their errors (function key required); 503 when degraded."""
    from connector.functions.health import health_report

    report = await health_report()
    return json_response(report.model_dump(), report.http_status)


def _http_in(req: func.HttpRequest) -> Any:
    from connector.functions.http import HttpIn

    return HttpIn(
        method=req.method,
        url=req.url,
        body=req.get_body() or b"",
        headers=dict(req.headers),
        params=dict(req.params),
    )


def _http_out(out: Any) -> func.HttpResponse:
    return func.HttpResponse(body=out.body, status_code=out.status, headers=dict(out.headers))


@app.function_name("pipedrive_webhook")
@app.route(route="pipedrive/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def pipedrive_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Pipedrive deal webhooks (v2 and v1). Anonymous for the host: we check Basic auth (and HMAC) ourselves."""
    from connector.functions.traced import pipedrive_webhook as traced_webhook

    return _http_out(await traced_webhook(_http_in(req)))


@app.function_name("admin_replay")
@app.route(route="admin/replay", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_replay(req: func.HttpRequest) -> func.HttpResponse:
    """Re-queue deals, failed jobs or the poison queue (function key required)."""
    from connector.functions.admin import handle_replay

    return _http_out(await handle_replay(_http_in(req)))


@app.function_name("admin_doctor")
@app.route(route="admin/doctor", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def admin_doctor(req: func.HttpRequest) -> func.HttpResponse:
    """Every settings and mapping assumption checked against both systems: pass / warn / fail rows."""
    from connector.functions.admin_ui import handle_doctor
    from connector.functions.http import guarded

    return _http_out(await guarded(handle_doctor)(_http_in(req)))


@app.function_name("admin_ui")
@app.route(route="admin/ui", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def admin_ui(req: func.HttpRequest) -> func.HttpResponse:
    """The admin page (server-rendered HTML): jobs, failures with replay, poison queues, audit, doctor."""
    from connector.functions.admin_ui import handle_admin_ui
    from connector.functions.http import guarded

    return _http_out(await guarded(handle_admin_ui)(_http_in(req)))


@app.function_name("admin_ui_replay")
@app.route(route="admin/ui/replay", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_ui_replay(req: func.HttpRequest) -> func.HttpResponse:
    """The admin page's replay buttons (a form post, answered with a redirect back to the page)."""
    from connector.functions.admin_ui import handle_admin_ui_replay
    from connector.functions.http import guarded

    return _http_out(await guarded(handle_admin_ui_replay)(_http_in(req)))


@app.function_name("order_build")
@app.queue_trigger(arg_name="msg", queue_name="%ORDER_QUEUE%", connection="AzureWebJobsStorage")
async def order_build(msg: func.QueueMessage) -> None:
    """One won deal -> one D365 sales order. Raising lets the host retry; after maxDequeueCount -> poison."""
    from connector.functions.traced import order_message

    text = msg.get_body().decode("utf-8", "replace")
    await order_message(text, dequeue_count=msg.dequeue_count or 1, inserted=msg.insertion_time)


@app.function_name("poll_won_deals")
@app.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def poll_won_deals(timer: func.TimerRequest) -> None:
    """Backup for missed webhooks: enqueue won deals updated since the checkpoint; samples queue depths."""
    from connector.functions.traced import poll

    await poll()


@app.function_name("d365_events")
@app.route(route="d365/events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def d365_events(req: func.HttpRequest) -> func.HttpResponse:
    """D365 business events (function key required): customer/product changes queue a master push."""
    from connector.functions.d365_events import handle_d365_events

    return _http_out(await handle_d365_events(_http_in(req)))


@app.function_name("master_push")
@app.queue_trigger(arg_name="msg", queue_name="%MASTER_QUEUE%", connection="AzureWebJobsStorage")
async def master_push(msg: func.QueueMessage) -> None:
    """One D365 product or customer -> its Pipedrive product or organization, written only when changed."""
    from connector.functions.traced import master_message

    text = msg.get_body().decode("utf-8", "replace")
    await master_message(text, dequeue_count=msg.dequeue_count or 1, inserted=msg.insertion_time)


@app.function_name("master_diff")
@app.timer_trigger(arg_name="timer", schedule="%MASTER_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def master_diff(timer: func.TimerRequest) -> None:
    """Full D365 -> Pipedrive master diff: queue a push for every record whose content changed."""
    from connector.functions.timer import run_master_diff

    await run_master_diff()


@app.function_name("reconcile_jobs")
@app.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def reconcile_jobs(timer: func.TimerRequest) -> None:
    """Stranded jobs (message lost, worker killed mid-step) get their message again; audited per job."""
    from connector.functions.timer import run_reconcile

    await run_reconcile()
