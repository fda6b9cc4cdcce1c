"""Webhook parsing and verification: pure functions, no server needed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from connector.pipedrive.errors import WebhookAuthError, WebhookPayloadError
from connector.pipedrive.webhooks import (
    parse_webhook,
    sign,
    verify_basic_auth,
    verify_request,
    verify_signature,
)

WON_AT = "2026-11-25T10:00:00.000Z"
EPOCH = int(datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp())


def v2_won(**meta: object) -> dict[str, object]:
    base_meta = {
        "action": "change",
        "entity": "deal",
        "company_id": "77",
        "correlation_id": "c0ffee00-1111-2222-3333-444455556666",
        "entity_id": "42",
        "id": "e7e1a1b0-0000-4000-8000-000000000001",
        "is_bulk_edit": False,
        "timestamp": WON_AT,
        "type": "general",
        "user_id": "1",
        "version": "2.0",
        "webhook_id": "9",
        "change_source": "app",
        "attempt": 1,
        "host": "acme.pipedrive.com",
        "permitted_user_ids": ["1"],
    }
    base_meta.update(meta)
    return {
        "meta": base_meta,
        "data": {"id": 42, "status": "won", "title": "Big order", "visible_to": "3", "custom_fields": {}},
        "previous": {"status": "open"},
    }


def v1_won() -> dict[str, object]:
    return {
        "v": 1,
        "matches_filters": {"current": [], "previous": []},
        "meta": {
            "v": 1,
            "action": "updated",
            "object": "deal",
            "change_source": "app",
            "id": 42,
            "company_id": 77,
            "user_id": 1,
            "host": "acme.pipedrive.com",
            "timestamp": EPOCH,
            "timestamp_micro": EPOCH * 1_000_000,
            "permitted_user_ids": [1],
            "trans_pending": False,
            "is_bulk_update": False,
            "webhook_id": 9,
        },
        "retry": 0,
        "current": {"id": 42, "status": "won", "title": "Big order", "update_time": "2026-11-25 10:00:00"},
        "previous": {"id": 42, "status": "open", "title": "Big order", "update_time": "2026-11-24 09:00:00"},
        "event": "updated.deal",
    }


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_v2_and_v1_deal_won_parse_to_the_same_event() -> None:
    v2 = parse_webhook(body(v2_won()))
    v1 = parse_webhook(body(v1_won()))
    same = ("entity", "action", "id", "status", "previous_status", "timestamp", "attempt")
    assert {k: getattr(v2, k) for k in same} == {k: getattr(v1, k) for k in same}
    assert (v2.entity, v2.action, v2.id, v2.status, v2.previous_status) == ("deal", "change", 42, "won", "open")
    assert v2.timestamp == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert v2.became_won and v1.became_won
    assert (v2.version, v1.version) == ("2.0", "1.0")
    assert v2.event_id == "e7e1a1b0-0000-4000-8000-000000000001"
    assert v2.correlation_id == "c0ffee00-1111-2222-3333-444455556666"


def test_retry_attempts_are_counted_the_same_way() -> None:
    assert parse_webhook(body(v2_won(attempt=3))).attempt == 3
    v1 = v1_won()
    v1["retry"] = 2
    assert parse_webhook(body(v1)).attempt == 3


def test_change_without_status_change_is_not_a_won_transition() -> None:
    payload = v2_won()
    payload["previous"] = {"title": "Old title"}
    event = parse_webhook(body(payload))
    assert event.status == "won" and event.previous_status is None and not event.became_won


def test_delete_event_has_no_current_status() -> None:
    payload = v2_won(action="delete")
    payload["data"] = None
    payload["previous"] = {"id": 42, "status": "won"}
    event = parse_webhook(body(payload))
    assert (event.action, event.status, event.previous_status) == ("delete", None, "won")


def test_epoch_timestamp_in_v2_is_accepted() -> None:
    assert parse_webhook(body(v2_won(timestamp=EPOCH))).timestamp == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"data": {}}', "meta"),
        (body(v2_won(entity_id="abc")), "meta.entity_id"),
        (body(v2_won(entity_id=None)), "meta.entity_id: missing"),
        (body(v2_won(action="explode")), "meta.action"),
        (body(v2_won(timestamp="yesterday")), "meta.timestamp"),
        (body(v2_won(attempt="1")), "meta.attempt"),
        (body(v2_won(entity=None)), "meta.entity: missing"),
        (body({**v2_won(), "data": "won"}), "data: expected an object"),
        (body({**v2_won(), "data": {"status": 3}}), "data.status"),
    ],
)
def test_bad_payloads_raise_a_typed_error_naming_the_problem(raw: bytes, needle: str) -> None:
    with pytest.raises(WebhookPayloadError) as info:
        parse_webhook(raw)
    assert needle in str(info.value)
    assert info.value.lines


def test_bad_v1_payload_names_its_fields() -> None:
    payload = v1_won()
    payload["meta"]["action"] = "teleported"  # type: ignore[index]
    payload["retry"] = "x"
    with pytest.raises(WebhookPayloadError) as info:
        parse_webhook(body(payload))
    assert any("meta.action" in line for line in info.value.lines)
    assert any(line.startswith("retry") for line in info.value.lines)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_accepts_only_the_exact_pair() -> None:
    assert verify_basic_auth(basic("hook", "s3cret"), "hook", "s3cret")
    assert verify_basic_auth("basic " + basic("hook", "s3cret")[6:], "hook", "s3cret")
    assert not verify_basic_auth(basic("hook", "wrong"), "hook", "s3cret")
    assert not verify_basic_auth(basic("other", "s3cret"), "hook", "s3cret")
    assert not verify_basic_auth(basic("hook", "s3cret:x"), "hook", "s3cret")
    assert not verify_basic_auth(None, "hook", "s3cret")
    assert not verify_basic_auth("Bearer abc", "hook", "s3cret")
    assert not verify_basic_auth("Basic !!notbase64!!", "hook", "s3cret")
    assert not verify_basic_auth(basic("", ""), "", "")  # an unset password never authenticates


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    raw = body(v2_won())
    good = sign(raw, "k3y")
    assert len(good) == 64
    assert verify_signature(raw, good, "k3y")
    assert verify_signature(raw, "sha256=" + good.upper(), "k3y")
    assert not verify_signature(raw + b" ", good, "k3y")
    assert not verify_signature(raw, good, "other")
    assert not verify_signature(raw, None, "k3y")


def test_verify_request_rejects_bad_credentials_and_bad_signatures() -> None:
    raw = body(v2_won())
    headers = {"Authorization": basic("hook", "pw"), "X-Sig": sign(raw, "k3y")}
    verify_request(headers, raw, user="hook", password="pw", signing_secret="k3y", signature_header="x-sig")
    verify_request({"authorization": basic("hook", "pw")}, raw, user="hook", password="pw")
    with pytest.raises(WebhookAuthError) as info:
        verify_request({"Authorization": basic("hook", "nope")}, raw, user="hook", password="pw")
    assert "nope" not in str(info.value) and "pw" not in str(info.value)
    with pytest.raises(WebhookAuthError, match="signature"):
        verify_request(
            {**headers, "X-Sig": sign(raw, "wrong")},
            raw,
            user="hook",
            password="pw",
            signing_secret="k3y",
            signature_header="X-Sig",
        )
    with pytest.raises(WebhookAuthError, match="signature"):
        verify_request({"Authorization": basic("hook", "pw")}, raw, user="hook", password="pw", signing_secret="k3y")
