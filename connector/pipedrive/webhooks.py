"""Pipedrive webhooks: idempotent registration, request verification, payload parsing.

Payload shapes: docs/api-facts.md, Pipedrive §8 (v2 `meta`/`data`/`previous`; v1 `meta`/
`current`/`previous`/`retry`). Pipedrive authenticates deliveries with HTTP Basic only; no HMAC
signature is documented (UNCONFIRMED, a third party claims one): `verify_signature` is opt-in,
used only when a signing secret is configured (e.g. behind a proxy that signs), header configurable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from connector.inputs import BadInput, parse_id, parse_json, parse_token, printable
from connector.pipedrive.errors import WebhookAuthError, WebhookPayloadError
from connector.pipedrive.models import Webhook, WebhookEvent
from connector.validation import problem_lines

if TYPE_CHECKING:
    from connector.pipedrive.client import PipedriveClient

DEFAULT_SIGNATURE_HEADER = "X-Pipedrive-Signature"  # UNCONFIRMED: not in Pipedrive's docs; configurable.
V1_ACTIONS = {"added": "create", "updated": "change", "merged": "change", "deleted": "delete"}
V2_ACTIONS = {"create", "change", "delete"}
MAX_ID_TEXT = 128  # meta.id / meta.correlation_id are UUIDs; the queue message holds at most 128
_EPOCH = re.compile(r"[0-9]{1,12}")


# --- verification ---------------------------------------------------------------------------


def verify_basic_auth(header: str | None, user: str, password: str) -> bool:
    """Constant-time check of an `Authorization: Basic ...` header against the configured pair."""
    supplied = b""
    if header and header[:6].lower() == "basic ":
        try:
            supplied = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            supplied = b""
    expected = f"{user}:{password}".encode()
    # Compare the whole "user:password" so neither part short-circuits; also refuse empty config.
    return bool(user) and bool(password) and hmac.compare_digest(supplied, expected)


def sign(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body (what a signer puts in the signature header)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of a hex HMAC-SHA256 signature, with or without a `sha256=` prefix."""
    if not header or not secret:
        return False
    value = header.strip()
    if value.lower().startswith("sha256="):
        value = value[7:]
    # surrogatepass: a header byte that is not UTF-8 arrives as a lone surrogate; it compares unequal, never raises.
    return hmac.compare_digest(value.lower().encode("utf-8", "surrogatepass"), sign(body, secret).encode())


def verify_request(
    headers: Mapping[str, str],
    body: bytes,
    *,
    user: str,
    password: str,
    signing_secret: str | None = None,
    signature_header: str = DEFAULT_SIGNATURE_HEADER,
) -> None:
    """Raise WebhookAuthError unless Basic auth matches (and the signature, when a secret is set)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not verify_basic_auth(lowered.get("authorization"), user, password):
        raise WebhookAuthError("webhook Basic credentials missing or wrong", status=401)
    if signing_secret and not verify_signature(body, lowered.get(signature_header.lower()), signing_secret):
        raise WebhookAuthError(f"webhook signature header {signature_header} missing or wrong", status=401)


# --- parsing --------------------------------------------------------------------------------


def _int(value: Any, where: str, problems: list[str]) -> int | None:
    try:
        return parse_id(value, where)
    except BadInput as exc:
        problems.extend(exc.lines)
        return None


def _timestamp(value: Any, where: str, problems: list[str]) -> datetime | None:
    """v2 sends ISO-8601 strings (docs also say '10 character timestamp'); v1 sends epoch seconds."""
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        if isinstance(value, int | float) or (isinstance(value, str) and _EPOCH.fullmatch(value)):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str) and value.isascii() and len(value) <= 40:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise ValueError
    except (ValueError, OverflowError, OSError):
        problems.append(f"{where}: expected an ISO-8601 or epoch timestamp, got {printable(value)}")
        return None


def _object(value: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    """`data`/`current`/`previous`: an object or null (v1 `user` events wrap it in a list)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or isinstance(value, dict):
        return value
    problems.append(f"{where}: expected an object or null, got {type(value).__name__}")
    return None


def _status(record: dict[str, Any] | None, where: str, problems: list[str]) -> str | None:
    if not record or record.get("status") is None:
        return None
    if not isinstance(record["status"], str):
        problems.append(f"{where}.status: expected a string, got {type(record['status']).__name__}")
        return None
    try:
        return parse_token(record["status"], f"{where}.status", max_length=40)
    except BadInput as exc:
        problems.extend(exc.lines)
        return None


def parse_webhook(body: bytes) -> WebhookEvent:
    """One WebhookEvent from a v2 ('2.0') or v1 ('1.0') delivery body; WebhookPayloadError otherwise."""
    try:
        payload = parse_json(body, what="webhook body")
    except BadInput as exc:
        raise WebhookPayloadError(exc.message, lines=exc.lines) from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError("webhook body must be a JSON object", lines=["body: not an object"])
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        raise WebhookPayloadError("webhook body has no `meta` object", lines=["meta: missing or not an object"])
    is_v1 = "current" in payload or "object" in meta or meta.get("v") == 1 or payload.get("v") == 1
    problems: list[str] = []
    fields = _parse_v1(payload, meta, problems) if is_v1 else _parse_v2(payload, meta, problems)
    if problems:
        raise WebhookPayloadError("webhook payload invalid: " + "; ".join(problems), lines=problems)
    try:
        return WebhookEvent.model_validate(fields)
    except PydanticValidationError as exc:
        lines = problem_lines(exc)
        raise WebhookPayloadError("webhook payload invalid: " + "; ".join(lines), lines=lines) from None


def _text(meta: dict[str, Any], key: str, problems: list[str], *, required: bool, max_length: int = 40) -> str | None:
    """An identifier from `meta` (action, entity, ids): printable ASCII and short, or a problem."""
    try:
        return parse_token(meta.get(key), f"meta.{key}", max_length=max_length, required=required)
    except BadInput as exc:
        problems.extend(exc.lines)
        return None


def _count(value: Any, where: str, default: int, problems: list[str]) -> int:
    """Delivery attempt counters (v2 meta.attempt 1..4, v1 retry 0..3), bounded loosely."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        problems.append(f"{where}: expected a small integer, got {printable(value, 20)}")
        return default
    return value


def _parse_v2(payload: dict[str, Any], meta: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    action = _text(meta, "action", problems, required=True)
    if action is not None and action not in V2_ACTIONS:
        problems.append(f"meta.action: {action!r} is not one of create, change, delete")
    data = _object(payload.get("data"), "data", problems)
    previous = _object(payload.get("previous"), "previous", problems)
    attempt = _count(meta.get("attempt"), "meta.attempt", 1, problems)
    return {
        "entity": _text(meta, "entity", problems, required=True),
        "action": action,
        "id": _int(meta.get("entity_id"), "meta.entity_id", problems),
        "status": _status(data, "data", problems),
        "previous_status": _status(previous, "previous", problems),
        "timestamp": _timestamp(meta.get("timestamp"), "meta.timestamp", problems),
        "attempt": attempt,
        "correlation_id": _text(meta, "correlation_id", problems, required=False, max_length=MAX_ID_TEXT),
        "event_id": _text(meta, "id", problems, required=False, max_length=MAX_ID_TEXT),
        "version": "2.0",
        "data": data,
        "previous": previous,
    }


def _parse_v1(payload: dict[str, Any], meta: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    raw_action = _text(meta, "action", problems, required=True)
    action = V1_ACTIONS.get(raw_action or "")
    if raw_action is not None and action is None:
        problems.append(f"meta.action: {raw_action!r} is not one of {', '.join(V1_ACTIONS)}")
    current = _object(payload.get("current"), "current", problems)
    previous = _object(payload.get("previous"), "previous", problems)
    entity_id = meta.get("id", (current or previous or {}).get("id"))
    retry = _count(payload.get("retry"), "retry", 0, problems)
    return {
        "entity": _text(meta, "object", problems, required=True),
        "action": action,
        "id": _int(entity_id, "meta.id", problems),
        "status": _status(current, "current", problems),
        "previous_status": _status(previous, "previous", problems),
        "timestamp": _timestamp(meta.get("timestamp"), "meta.timestamp", problems),
        "attempt": retry + 1,
        "correlation_id": _text(meta, "correlation_id", problems, required=False, max_length=MAX_ID_TEXT),
        "event_id": None,  # v1 meta.id is the entity id; v1 has no event id
        "version": "1.0",
        "data": current,
        "previous": previous,
    }


# --- registration ---------------------------------------------------------------------------


def _same_target(hook: Webhook, url: str, event_action: str, event_object: str) -> bool:
    return hook.subscription_url == url and hook.event_action == event_action and hook.event_object == event_object


async def ensure_webhook(
    client: PipedriveClient,
    url: str,
    user: str,
    password: str,
    event_action: str = "change",
    event_object: str = "deal",
    version: str = "2.0",
    *,
    name: str = "ml-connector",
) -> Webhook:
    """Make exactly one webhook for (url, action, object) exist with these settings.

    An identical one is reused; one for the same target with other settings (version, user) is
    deleted and recreated, so deliveries are never doubled. The password cannot be compared
    (Pipedrive does not return it, UNCONFIRMED), so rotate it by deleting the webhook first.
    """
    hooks = await client.list_webhooks()
    same = [h for h in hooks if _same_target(h, url, event_action, event_object)]
    keep = next((h for h in same if (h.version or "2.0") == version and (h.http_auth_user or "") == user), None)
    for hook in same:
        if hook is not keep:
            await client.delete_webhook(hook.id)
    if keep is not None:
        return keep
    return await client.create_webhook(
        {
            "subscription_url": url,
            "event_action": event_action,
            "event_object": event_object,
            "name": name,
            "http_auth_user": user,
            "http_auth_password": password,
            "version": version,
        }
    )
