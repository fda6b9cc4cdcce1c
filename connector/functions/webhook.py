"""POST /api/pipedrive/webhook: verify, parse, enqueue. Nothing else, so we answer well inside
Pipedrive's 10-second delivery timeout; the worker re-reads the deal and never trusts this body."""

from __future__ import annotations

import uuid

from connector.errors import ConfigError, TransientError
from connector.functions.http import HttpIn, HttpOut, json_error, json_response
from connector.pipedrive.errors import WebhookAuthError, WebhookPayloadError
from connector.pipedrive.webhooks import DEFAULT_SIGNATURE_HEADER, parse_webhook, verify_request
from connector.runtime import get_runtime
from connector.secrets import SecretNames

# Pipedrive deal payloads are a few KB; anything far larger is not a webhook we should parse.
MAX_BODY_BYTES = 256 * 1024


async def handle_pipedrive_webhook(req: HttpIn) -> HttpOut:
    if len(req.body) > MAX_BODY_BYTES:
        return json_error(413, f"webhook body is {len(req.body)} bytes; the limit is {MAX_BODY_BYTES}")
    rt = await get_runtime()
    settings = rt.settings
    try:
        password = await rt.secrets.get(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD)
        signing = None
        if settings.pipedrive_webhook_signature_header:
            signing = await rt.secrets.get(SecretNames.PIPEDRIVE_WEBHOOK_SIGNING_SECRET)
    except ConfigError as exc:
        # Our configuration, not the sender's fault: 500 makes Pipedrive retry later; nothing is lost.
        return json_error(500, f"webhook receiver is not configured: {exc}")
    try:
        verify_request(
            req.headers,
            req.body,
            user=settings.pipedrive_webhook_user,
            password=password,
            signing_secret=signing,
            signature_header=settings.pipedrive_webhook_signature_header or DEFAULT_SIGNATURE_HEADER,
        )
    except WebhookAuthError as exc:
        return json_error(401, str(exc), {"WWW-Authenticate": 'Basic realm="ml-connector"'})
    try:
        event = parse_webhook(req.body)
    except WebhookPayloadError as exc:
        return json_error(400, str(exc), problems=exc.lines)

    subject = f"{event.entity}-{event.id}"
    correlation_id = event.correlation_id or event.event_id or f"webhook-{uuid.uuid4().hex[:12]}"
    if not event.became_won:
        await rt.state.audit.append(
            subject,
            "webhook.ignored",
            correlation_id=correlation_id,
            level="debug",
            detail={"action": event.action, "status": event.status, "previous_status": event.previous_status},
        )
        return json_response(200, {"status": "ignored"})
    try:
        queued = await rt.queues.enqueue_order(event.id, reason="webhook", correlation_id=correlation_id)
    except TransientError as exc:
        # Storage trouble: a 503 makes Pipedrive deliver again (and the poll backs it up).
        return json_error(503, f"could not queue the deal: {exc}")
    return json_response(200, {"status": "queued" if queued else "duplicate", "deal_id": event.id})
