"""Every class of junk a stranger or a broken sender can post gets a 4xx JSON error
and queues nothing, through the decorated function_app handlers and over the local runner's real HTTP.
Only our own faults (storage down) answer 5xx: a 503 with a JSON error, never a traceback."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.core.exceptions import ServiceRequestError

from connector.dev.sandbox.d365.events import envelope
from connector.dev.sandbox.stack import WEBHOOK_USER
from tests.fixtures.platform import app_function
from tests.fixtures.stack import E2E
from tests.pipedrive.test_webhook_payloads import v1_won, v2_won

Post = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[int, Any]]]
ROUTES = {"pipedrive/webhook": "pipedrive_webhook", "d365/events": "d365_events", "admin/replay": "admin_replay"}
DEEP = 5000


def basic(password: str, user: str = WEBHOOK_USER) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def won(deal: object = "101", **meta: object) -> dict[str, Any]:
    return v2_won(entity_id=deal, **meta)


def raw(payload: object) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture(params=["function_app", "http"])
def post(request: pytest.FixtureRequest, e2e: E2E) -> Post:
    """POST a body to a route through the decorated handler or over HTTP (admin routes get the key)."""

    async def over_http(route: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if route != "pipedrive/webhook":
            headers = {"x-functions-key": e2e.host.admin_key, **headers}
        raw_headers = {k: v.encode() for k, v in headers.items()}  # non-ASCII values go out as UTF-8 bytes
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{e2e.host.base_url}/api/{route}", content=body, headers=raw_headers)
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response.status_code, response.json()

    async def through_function_app(route: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        handler = app_function(ROUTES[route]).get_user_function()
        response = await handler(func.HttpRequest(method="POST", url=f"/api/{route}", body=body, headers=headers))
        return response.status_code, json.loads(response.get_body())

    return over_http if request.param == "http" else through_function_app


async def nothing_queued(e2e: E2E) -> None:
    assert await e2e.queue_depth() == 0
    assert await e2e.rt.queues.depth(e2e.rt.queues.master_queue) == 0
    assert await e2e.rt.state.jobs.list() == []


def refused(status: int, payload: Any, *words: str) -> None:
    assert 400 <= status < 500, (status, payload)
    assert isinstance(payload.get("error"), str) and payload["error"], payload
    text = json.dumps(payload).lower()
    assert "traceback" not in text
    for word in words:
        assert word.lower() in text, (word, payload)


# ---- the Pipedrive webhook -----------------------------------------------------------------------

WEBHOOK_JUNK = [
    pytest.param(b'{"meta": ' + b"[" * DEEP + b"]" * DEEP + b"}", "nested", id="json-nested-5000-deep"),
    pytest.param(
        raw(won(data_pad=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])),
        "nested",
        id="json-nested-34",
    ),
    pytest.param(raw(won(0)), "meta.entity_id", id="id-zero"),
    pytest.param(raw(won(-7)), "meta.entity_id", id="id-negative"),
    pytest.param(raw(won("-7")), "meta.entity_id", id="id-negative-text"),
    pytest.param(raw(won(2**64)), "meta.entity_id", id="id-beyond-64-bits"),
    pytest.param(raw(won(str(2**63))), "meta.entity_id", id="id-text-beyond-63-bits"),
    pytest.param(raw(won("١٢٣")), "meta.entity_id", id="id-arabic-indic-digits"),
    pytest.param(raw(won("１２３")), "meta.entity_id", id="id-full-width-digits"),
    pytest.param(raw(won("1" * 5000)), "meta.entity_id", id="id-5000-digit-text"),
    pytest.param(b'{"meta": {"entity_id": ' + b"1" * 5000 + b"}}", "json", id="id-5000-digit-number"),
    pytest.param(raw(won(" 101")), "meta.entity_id", id="id-padded"),
    pytest.param(raw(won(101.0)), "meta.entity_id", id="id-float"),
    pytest.param(raw(won(True)), "meta.entity_id", id="id-boolean"),
    pytest.param(raw(won(title="\ud800")), "surrogate", id="lone-surrogate-in-meta"),
    pytest.param(
        raw({**won(), "data": {"status": "won", "title": "a\udfffb"}}), "surrogate", id="lone-surrogate-in-data"
    ),
    pytest.param(raw({**won(), "data": {"status": "won", "title": "a\x00b"}}), "nul", id="nul-in-string"),
    pytest.param(raw(won(correlation_id="c" * 300)), "meta.correlation_id", id="correlation-id-300-chars"),
    pytest.param(raw(won(correlation_id="a b")), "meta.correlation_id", id="correlation-id-with-space"),
    pytest.param(raw(won(id="e" * 2000)), "meta.id", id="event-id-2000-chars"),
    pytest.param(raw(won(entity="deal" * 300)), "meta.entity", id="entity-1200-chars"),
    pytest.param(raw(won(entity="deal\u00e9")), "meta.entity", id="entity-non-ascii"),
    pytest.param(raw(won(attempt=10**30)), "meta.attempt", id="attempt-huge"),
    pytest.param(raw(won(timestamp="9" * 40)), "meta.timestamp", id="timestamp-out-of-range"),
    pytest.param(raw(won(timestamp="١٧٠٠٠٠٠٠٠٠")), "meta.timestamp", id="timestamp-non-ascii-digits"),
    pytest.param(b'{"meta": {"action": "change"}, "meta": {"action": "delete"}}', "twice", id="duplicate-json-keys"),
    pytest.param(b'{"meta": {"attempt": NaN}}', "json", id="nan"),
    pytest.param(b"\xff\xfe{}", "utf-8", id="not-utf8"),
    pytest.param(b"\xef\xbb\xbf{}", "json", id="utf8-bom"),
    pytest.param(raw({**won(), "data": {"status": 3}}), "data.status", id="status-not-text"),
    pytest.param(raw({**won(), "data": ["won", "open"]}), "data", id="data-a-list"),
    pytest.param(raw(won(action="explode")), "meta.action", id="unknown-action"),
    pytest.param(b"", "json", id="empty-body"),
]


@pytest.mark.parametrize(("body", "words"), WEBHOOK_JUNK)
async def test_webhook_junk_is_a_4xx_and_queues_nothing(e2e: E2E, post: Post, body: bytes, words: str) -> None:
    status, payload = await post("pipedrive/webhook", body, basic(e2e.stack.webhook_password))
    refused(status, payload, words)
    assert e2e.stack.webhook_password not in json.dumps(payload)
    await nothing_queued(e2e)


# Valid events that are not a change into won: accepted (200) and ignored, never queued.
NOT_A_WIN = [
    pytest.param({**won(action="delete"), "data": {"status": "won"}, "previous": {"status": "open"}}, id="delete-v2"),
    pytest.param({**won(action="create"), "previous": None}, id="create-already-won"),
    pytest.param({**v1_won(), "meta": {**v1_won()["meta"], "action": "deleted"}}, id="deleted-v1"),  # type: ignore[dict-item]
    pytest.param({**v1_won(), "meta": {**v1_won()["meta"], "action": "added"}, "previous": None}, id="added-v1"),  # type: ignore[dict-item]
    pytest.param({**won(), "previous": {"status": "won"}}, id="won-to-won"),
    pytest.param({**won(entity="person")}, id="not-a-deal"),
]


@pytest.mark.parametrize("payload", NOT_A_WIN)
async def test_events_that_are_not_a_won_change_never_queue(e2e: E2E, post: Post, payload: dict[str, Any]) -> None:
    status, answer = await post("pipedrive/webhook", raw(payload), basic(e2e.stack.webhook_password))
    assert (status, answer) == (200, {"status": "ignored"})
    await nothing_queued(e2e)


AUTH_JUNK = [
    pytest.param(lambda pw: {"Authorization": "Basic " + "é" * 10}, 401, id="non-ascii-credentials"),
    pytest.param(lambda pw: {"Authorization": "Basic !!!notbase64"}, 401, id="not-base64"),
    pytest.param(lambda pw: {"Authorization": f"Basic {WEBHOOK_USER}:{pw}"}, 401, id="raw-credentials-not-base64"),
    pytest.param(lambda pw: {"Authorization": basic(pw)["Authorization"] + ", Basic eDp5"}, 400, id="two-credentials"),
    pytest.param(lambda pw: {"Authorization": "Bearer " + pw}, 401, id="bearer-scheme"),
    pytest.param(lambda pw: {}, 401, id="none"),
]


@pytest.mark.parametrize(("headers", "status"), AUTH_JUNK)
async def test_bad_credentials_are_refused_without_echo(
    e2e: E2E, post: Post, headers: Callable[[str], dict[str, str]], status: int
) -> None:
    password = e2e.stack.webhook_password
    got, payload = await post("pipedrive/webhook", raw(won()), headers(password))
    assert got == status, payload
    assert password not in json.dumps(payload)
    await nothing_queued(e2e)


async def test_repeated_authorization_headers_over_http_are_refused(e2e: E2E) -> None:
    good = basic(e2e.stack.webhook_password)["Authorization"]
    headers = [("Authorization", good), ("Authorization", good)]
    async with httpx.AsyncClient() as client:
        response = await client.post(e2e.webhook_url, content=raw(won()), headers=headers)
    refused(response.status_code, response.json(), "repeated")
    await nothing_queued(e2e)


async def test_a_valid_won_change_is_still_queued(e2e: E2E, post: Post) -> None:
    status, payload = await post("pipedrive/webhook", raw(won()), basic(e2e.stack.webhook_password))
    assert (status, payload) == (200, {"status": "queued", "deal_id": 101})
    status, payload = await post(
        "pipedrive/webhook",
        raw(v1_won() | {"meta": {**v1_won()["meta"], "id": 102}}),
        basic(e2e.stack.webhook_password),
    )  # type: ignore[dict-item]
    assert (status, payload) == (200, {"status": "queued", "deal_id": 102})
    assert await e2e.queue_depth() == 2


async def test_storage_blip_during_the_audit_of_an_ignored_webhook_is_a_json_503(
    e2e: E2E, post: Post, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = await e2e.rt.state.audit._table.client()

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ServiceRequestError("connection refused")

    monkeypatch.setattr(table, "create_entity", unreachable)
    status, payload = await post(
        "pipedrive/webhook", raw({**won(), "previous": {"title": "x"}}), basic(e2e.stack.webhook_password)
    )
    assert status == 503 and "try again" in payload["error"] and payload["reference"], payload
    assert "Traceback" not in json.dumps(payload) and "connection refused" not in json.dumps(payload)


async def test_missing_webhook_secret_is_a_json_503(e2e: E2E, post: Post, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.secrets import MissingSecretError

    async def missing(name: str) -> str:
        raise MissingSecretError(f"secret {name!r} is not set in local secret file /somewhere")

    monkeypatch.setattr(e2e.rt.secrets, "get", missing)
    status, payload = await post("pipedrive/webhook", raw(won()), basic("x"))
    assert status == 503 and "configuration" in payload["error"], payload
    assert "/somewhere" not in json.dumps(payload)
    await nothing_queued(e2e)


# ---- D365 business events ------------------------------------------------------------------------


def event(**changes: Any) -> dict[str, Any]:
    return {**envelope("ReleasedProductChangedBusinessEvent", "usmf", 5637144577, {"ItemNumber": "HP-1000"}), **changes}


EVENT_JUNK = [
    pytest.param(raw(event(EventId="E" * 1000)), "eventid", id="event-id-1000-chars"),
    pytest.param(raw(event(EventId="")), "eventid", id="event-id-empty"),
    pytest.param(raw(event(EventId="ABC\u00e9")), "eventid", id="event-id-non-ascii"),
    pytest.param(raw(event(EventId="A\x00B")), "nul", id="event-id-nul"),
    pytest.param(raw(event(EventId="\ud800")), "surrogate", id="event-id-lone-surrogate"),
    pytest.param(raw(event(ControlNumber=-(2**63) - 1)), "controlnumber", id="control-number-below-64-bits"),
    pytest.param(raw(event(ControlNumber=2**64)), "controlnumber", id="control-number-beyond-64-bits"),
    pytest.param(raw(event(ControlNumber="5637144577")), "controlnumber", id="control-number-text"),
    pytest.param(raw(event(BusinessEventId="X" * 300)), "businesseventid", id="business-event-id-300-chars"),
    pytest.param(
        raw(event(BusinessEventLegalEntity="usmf" * 20)), "businesseventlegalentity", id="legal-entity-80-chars"
    ),
    pytest.param(raw(event(ItemNumber="")), "itemnumber", id="key-field-empty"),
    pytest.param(raw(event(ItemNumber="I" * 300)), "itemnumber", id="key-field-300-chars"),
    pytest.param(b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}", "nested", id="json-nested-5000-deep"),
    pytest.param(b'{"EventId": "A", "EventId": "B"}', "twice", id="duplicate-json-keys"),
    pytest.param(raw([event() for _ in range(501)]), "limit", id="too-many-events"),
    pytest.param(raw([]), "empty", id="empty-array"),
    pytest.param(raw([event(), 7]), "business event", id="array-with-junk"),
    pytest.param(b"{oops", "json", id="not-json"),
]


@pytest.mark.parametrize(("body", "words"), EVENT_JUNK)
async def test_d365_event_junk_is_a_4xx_and_queues_nothing(e2e: E2E, post: Post, body: bytes, words: str) -> None:
    status, payload = await post("d365/events", body, {})
    refused(status, payload, words)
    await nothing_queued(e2e)


async def test_one_bad_event_in_a_delivery_queues_none_of_them(e2e: E2E, post: Post) -> None:
    status, payload = await post("d365/events", raw([event(), event(), event(EventId="x" * 500)]), {})
    refused(status, payload, "item 2")  # the third event, by its index
    await nothing_queued(e2e)


# ---- the admin replay ----------------------------------------------------------------------------

REPLAY_JUNK = [
    pytest.param({"deal_ids": [101, 0]}, "deal_ids[1]", id="id-zero"),
    pytest.param({"deal_ids": [-5]}, "deal_ids[0]", id="id-negative"),
    pytest.param({"deal_ids": [101, 2**64]}, "deal_ids[1]", id="id-beyond-64-bits"),
    pytest.param({"deal_ids": ["101"]}, "deal_ids[0]", id="id-as-text"),
    pytest.param({"deal_ids": ["١٢٣"]}, "deal_ids[0]", id="id-non-ascii-digits"),
    pytest.param({"deal_ids": [1.5]}, "deal_ids[0]", id="id-float"),
    pytest.param({"deal_ids": [True]}, "deal_ids[0]", id="id-boolean"),
    pytest.param({"deal_ids": list(range(1, 1002))}, "at most 1000", id="too-many-ids"),
    pytest.param({"deal_ids": 101}, "deal_ids", id="ids-not-a-list"),
    pytest.param({"failed": "yes"}, "failed", id="flag-not-boolean"),
    pytest.param({"deal_ids": [101], "everything": True}, "everything", id="unknown-field"),
    pytest.param({}, "give deal_ids", id="nothing-asked"),
    pytest.param([101], "object", id="body-a-list"),
]


@pytest.mark.parametrize(("body", "words"), REPLAY_JUNK)
async def test_replay_junk_is_a_400_and_queues_nothing(e2e: E2E, post: Post, body: Any, words: str) -> None:
    status, payload = await post("admin/replay", raw(body), {})
    refused(status, payload, words)
    await nothing_queued(e2e)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"deal_ids": [101], "deal_ids": [102]}', id="duplicate-json-keys"),
        pytest.param(b'{"deal_ids": [' + b"[" * DEEP + b"]" * DEEP + b"]}", id="json-nested-5000-deep"),
        pytest.param(b'{"deal_ids": [' + b"9" * 5000 + b"]}", id="id-5000-digits"),
    ],
)
async def test_replay_malformed_json_is_a_400(e2e: E2E, post: Post, body: bytes) -> None:
    status, payload = await post("admin/replay", body, {})
    refused(status, payload)
    await nothing_queued(e2e)


async def test_replay_is_all_or_nothing_and_names_the_bad_id(e2e: E2E, post: Post) -> None:
    good = list(range(101, 111))
    status, payload = await post("admin/replay", raw({"deal_ids": [*good, 0, 104, -3]}), {})
    refused(status, payload, "deal_ids[10]", "deal_ids[12]", "nothing was queued")
    await nothing_queued(e2e)

    status, payload = await post("admin/replay", raw({"deal_ids": [*good, 104]}), {})
    assert status == 202 and payload["requeued"] == good, payload
    assert await e2e.queue_depth() == len(good)
    status, payload = await post("admin/replay", raw({"deal_ids": good}), {})
    assert status == 202 and payload["requeued"] == [] and set(payload["skipped"].values()) == {"queued"}
    assert await e2e.queue_depth() == len(good)


@pytest.mark.parametrize(
    ("route", "key"),
    [
        pytest.param("admin/replay", None, id="replay-no-key"),
        pytest.param("admin/replay", "wrong-key", id="replay-wrong-key"),
        pytest.param("admin/replay", "ключ-\u00e9", id="replay-non-ascii-key"),
        pytest.param("d365/events", None, id="events-no-key"),
        pytest.param("d365/events", "\u00ff" * 40, id="events-non-ascii-key"),
        pytest.param("health/details", None, id="details-no-key"),
    ],
)
async def test_admin_routes_of_the_local_runner_are_never_open(e2e: E2E, route: str, key: str | None) -> None:
    params = {} if key is None else {"code": key}
    async with httpx.AsyncClient() as client:
        if route == "health/details":
            response = await client.get(f"{e2e.host.base_url}/api/{route}", params=params)
        else:
            response = await client.post(f"{e2e.host.base_url}/api/{route}", params=params, content=b"{}")
    assert response.status_code == 401 and response.json()["error"], response.text
    await nothing_queued(e2e)


async def test_a_repeated_function_key_is_refused(e2e: E2E) -> None:
    key = e2e.host.admin_key
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{e2e.host.base_url}/api/admin/replay",
            params={"code": key},
            headers={"x-functions-key": key},
            content=raw({"deal_ids": [101]}),
        )
    assert response.status_code == 401
    await nothing_queued(e2e)


async def test_unknown_routes_and_methods_answer_json(e2e: E2E) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{e2e.host.base_url}/api/nothing")
        wrong = await client.get(e2e.webhook_url)
        huge = await client.post(e2e.webhook_url, content=b"x" * (2 * 1024 * 1024))
    assert (missing.status_code, wrong.status_code, huge.status_code) == (404, 405, 413)
    for response in (missing, wrong, huge):
        assert response.json()["error"]


async def test_health_up_down_is_anonymous_and_details_need_the_key(e2e: E2E) -> None:
    async with httpx.AsyncClient() as client:
        up = await client.get(f"{e2e.host.base_url}/api/health")
        details = await client.get(
            f"{e2e.host.base_url}/api/health/details", headers={"x-functions-key": e2e.host.admin_key}
        )
    assert (up.status_code, up.json()) == (200, {"status": "up"})
    assert details.status_code == 200 and details.json()["storage"]["tables"]["ok"] and details.json()["versions"]


async def test_cli_replay_refuses_bad_ids_and_queues_nothing(e2e: E2E) -> None:
    from tests.e2e.test_cli import cli

    code, _, text = await cli(e2e, "replay", "101", "0", "102", "--json")
    assert code == 2 and "deal ids[1]" in text and "nothing was queued" in text, text
    assert "Traceback" not in text
    await nothing_queued(e2e)


async def test_key_vault_unreachable_is_a_json_503(e2e: E2E, post: Post, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.dev.sandbox.azurite import free_port
    from connector.secrets import KeyVaultSecretStore
    from tests.platform.keyvault_sim import StaticCredential

    dead = KeyVaultSecretStore(
        f"https://127.0.0.1:{free_port()}",
        credential=StaticCredential(),
        verify_challenge_resource=False,
        retry_total=0,
    )
    monkeypatch.setattr(e2e.rt, "secrets", dead)
    try:
        status, payload = await post("pipedrive/webhook", raw(won()), basic(e2e.stack.webhook_password))
    finally:
        await dead.close()
    assert status == 503 and "key vault" in payload["error"].lower() and payload["reference"], payload
    await nothing_queued(e2e)
