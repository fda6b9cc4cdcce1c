"""POST /api/pipedrive/webhook: verify, parse, enqueue. Nothing else, so we answer well inside
Pipedrive's 10-second delivery timeout; the worker re-reads the deal and never trusts this body."""

from __future__ import annotations

import uuid

from connector.functions.http import HttpIn, HttpOut, guarded, json_error, json_response, single_header
from connector.inputs import BadInput
from connector.pipedrive.errors import WebhookAuthError, WebhookPayloadError
from connector.pipedrive.webhooks import DEFAULT_SIGNATURE_HEADER, parse_webhook, verify_request
from connector.redact import remember_basic
from connector.runtime import get_runtime
from connector.secrets import SecretNames

# Pipedrive deal payloads are a few KB; anything far larger is not a webhook we should parse.
MAX_BODY_BYTES = 256 * 1024
UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="ml-connector"'}


@guarded
async def handle_pipedrive_webhook(req: HttpIn) -> HttpOut:
    if len(req.body) > MAX_BODY_BYTES:
        return json_error(413, f"webhook body is {len(req.body)} bytes; the limit is {MAX_BODY_BYTES}")
    rt = await get_runtime()
    settings = rt.settings
    signature_header = settings.pipedrive_webhook_signature_header or DEFAULT_SIGNATURE_HEADER
    # Our configuration, not the sender's fault: a ConfigError here is a 503 (guarded), and Pipedrive retries.
    password = await rt.secrets.get(SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD)
    remember_basic(settings.pipedrive_webhook_user, password)  # the header form of it, masked in logs too
    signing = None
    if settings.pipedrive_webhook_signature_header:
        signing = await rt.secrets.get(SecretNames.PIPEDRIVE_WEBHOOK_SIGNING_SECRET)
    headers = {"Authorization": single_header(req, "Authorization") or ""}
    if signing:
        headers[signature_header] = single_header(req, signature_header) or ""
    try:
        verify_request(
            headers,
            req.body,
            user=settings.pipedrive_webhook_user,
            password=password,
            signing_secret=signing,
            signature_header=signature_header,
        )
    except WebhookAuthError as exc:
        return json_error(401, str(exc), UNAUTHORIZED)
    try:
        event = parse_webhook(req.body)
    except WebhookPayloadError as exc:
        raise BadInput(str(exc), lines=exc.lines) from None

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
    # Storage trouble here is a 503 (guarded): Pipedrive delivers again, and the poll backs it up.
    queued = await rt.queues.enqueue_order(event.id, reason="webhook", correlation_id=correlation_id)
    return json_response(200, {"status": "queued" if queued else "duplicate", "deal_id": event.id})
