"""Pure parts of the D365 client: escaping, error table, dimensions, events, $batch codec.

Recorded real F&O answers are read at run time from the shared research folder's `d365/samples/`
(tests/fixtures/reference.py); a case whose sample is absent is skipped.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest

from connector.d365 import odata
from connector.d365.batch import Operation, build_changeset, parse_batch_response
from connector.d365.dimensions import format_dimensions
from connector.d365.errors import classify, error_from_response, infolog_lines
from connector.d365.events import InvalidEventError, parse_business_event, parse_business_events
from connector.d365.models import Customer, CustomerCreate, SalesOrderHeaderCreate, SalesOrderLineCreate
from connector.errors import (
    AuthError,
    DuplicateError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    ValidationError,
)
from connector.retry import resend_after_failure, resend_after_no_answer
from tests.fixtures.reference import D365_REFERENCE as REF

SAMPLES = REF / "samples"


def d365_retryable(response: httpx.Response) -> bool:
    """Whether the retry transport resends a request that got this D365 answer."""
    failure = classify(response)
    return failure is not None and resend_after_failure(response.request, failure)


def _sample(name: str) -> dict:
    """Real recorded F&O bodies from the shared reference; skip where the reference is not checked out."""
    if not (SAMPLES / name).is_file():
        pytest.skip(f"reference sample {name} not present")
    return json.loads((SAMPLES / name).read_text())


# --- escaping ---------------------------------------------------------------------------------


def test_key_segment_doubles_quotes_and_encodes_leading_space() -> None:
    assert odata.key_segment({"dataAreaId": "dat", "ItemNumber": " RFI-TEST-001"}) == (
        "(dataAreaId='dat',ItemNumber='%20RFI-TEST-001')"
    )
    assert odata.key_segment({"dataAreaId": "dat", "CustomerAccount": "O'Brien 1"}) == (
        "(dataAreaId='dat',CustomerAccount='O''Brien%201')"
    )


@pytest.mark.parametrize("value", ["A/B", "A\\B", "A+B", "A&B", "A:B", "100%", "A*", "A?", "A#1"])
def test_key_segment_refuses_what_f_and_o_cannot_route(value: str) -> None:
    with pytest.raises(ValueError, match="cannot take in a URL path"):
        odata.key_segment({"dataAreaId": "dat", "ItemNumber": value})
    assert odata.key_filter({"dataAreaId": "dat", "ItemNumber": value}) == (
        f"(dataAreaId eq 'dat') and (ItemNumber eq '{value}')"
    )


def test_lookups_split_by_encoded_url_length_not_by_count() -> None:
    values = [f"ITEM/{n:03d}" for n in range(40)]
    chunks = list(odata.eq_any_chunks("ItemNumber", values, lambda clause: len(clause) <= 200))
    assert [v for group, _ in chunks for v in group] == values
    assert all(len(clause) <= 200 for _, clause in chunks) and len(chunks) > 1
    assert chunks[0][1].startswith("(ItemNumber eq 'ITEM/000') or (ItemNumber eq 'ITEM/001')")
    with pytest.raises(ValueError, match="too long"):
        list(odata.eq_any_chunks("ItemNumber", ["X" * 300], lambda clause: len(clause) <= 200))


def test_filter_literals_and_query_string() -> None:
    clause = odata.and_(odata.eq("OrganizationName", "Bob's & Co"), odata.eq("dataAreaId", "dat"))
    assert clause == "(OrganizationName eq 'Bob''s & Co') and (dataAreaId eq 'dat')"
    qs = odata.Query(filter=clause, select=["CustomerAccount"], top=5, cross_company=True).to_query_string()
    assert qs == (
        "?$filter=(OrganizationName%20eq%20'Bob''s%20%26%20Co')%20and%20(dataAreaId%20eq%20'dat')"
        "&$select=CustomerAccount&$top=5&cross-company=true"
    )
    assert odata.eq("IsOneTimeCustomer", odata.EnumValue("NoYes", "Yes")) == (
        "IsOneTimeCustomer eq Microsoft.Dynamics.DataEntities.NoYes'Yes'"
    )
    assert odata.contains("OrganizationName", "retail") == "OrganizationName eq '*retail*'"
    assert odata.needs_exact_recheck("A*B") and not odata.needs_exact_recheck("AB")
    with pytest.raises(ValueError, match="property name"):
        odata.eq("Name eq 'x' or 1", "y")
    with pytest.raises(ValueError):
        odata.contains("OrganizationName", "a*b")


# --- models -----------------------------------------------------------------------------------


def test_create_models_emit_real_names_and_reject_unknown_fields() -> None:
    header = SalesOrderHeaderCreate(
        data_area_id="DAT",
        ordering_customer_account_number="DAT-000004",
        currency_code="usd",
        requested_shipping_date=date(2026, 7, 30),
        customers_order_reference="PD-DEAL-1",
    )
    assert header.to_payload() == {
        "dataAreaId": "dat",
        "OrderingCustomerAccountNumber": "DAT-000004",
        "CurrencyCode": "USD",
        "CustomersOrderReference": "PD-DEAL-1",
        "RequestedShippingDate": "2026-07-30T12:00:00Z",
    }
    line = SalesOrderLineCreate(data_area_id="dat", item_number=" RFI-TEST-001", ordered_sales_quantity="2.5")
    assert line.to_payload() == {"dataAreaId": "dat", "ItemNumber": " RFI-TEST-001", "OrderedSalesQuantity": 2.5}
    with pytest.raises(Exception, match="Extra inputs"):
        SalesOrderLineCreate(dataAreaId="dat", ItemNumber="X", OrderedSalesQuantity=1, ItemNo="X")
    with pytest.raises(Exception, match="OrganizationName is required"):
        CustomerCreate(data_area_id="dat", customer_group_id="IG-CL", sales_currency_code="USD")


def test_read_model_parses_recorded_real_customer() -> None:
    recorded = _sample("nango-recorded-fno-responses.json")["create-customer POST /data/CustomersV3"]["response"]
    customer = Customer.model_validate(recorded)
    assert customer.customer_account == "DAT-000053"
    assert customer.organization_name == "RFI Dryrun Customer 001"
    assert customer.key() == {"dataAreaId": "dat", "CustomerAccount": "DAT-000053"}
    assert customer.etag and customer.etag.startswith('W/"')


# --- error table ------------------------------------------------------------------------------


def _resp(status: int, body: object = b"", headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers=headers or {}, request=httpx.Request("GET", "https://x/data/X")
    )


def test_error_table() -> None:
    errors = _sample("odata-error-body-samples.json")
    dup = error_from_response(_resp(500, errors["duplicate_key_inside_batch_changeset"]["body"]), "POST CustomerGroups")
    assert isinstance(dup, DuplicateError)
    assert "The record already exists." in str(dup) and "stacktrace" not in str(dup)

    bad = error_from_response(_resp(400, errors["customersv3_invalid_customer_group"]["body"]), "POST CustomersV3")
    assert isinstance(bad, ValidationError)
    assert bad.lines == [
        "The value 'Local' in field 'Customer group' is not found in the related table 'Customer groups'.",
        "validateField failed on field 'CustCustomerV3Entity.CustomerGroupId'.",
    ]
    throttled = error_from_response(_resp(429, b"", {"Retry-After": "7"}), "GET CustomersV3")
    assert isinstance(throttled, RateLimitedError) and throttled.retry_after == 7
    assert isinstance(error_from_response(_resp(401), "GET"), AuthError)
    assert isinstance(error_from_response(_resp(404, {"error": {"code": "", "message": "x"}}), "GET"), NotFoundError)
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    gateway = error_from_response(_resp(502, html, {"content-type": "text/html"}), "GET CustomersV3")
    assert isinstance(gateway, TransientError) and "502 Bad Gateway" in str(gateway)


def test_business_errors_are_not_retried_but_gateway_errors_are() -> None:
    write_error = _sample("odata-error-body-samples.json")["duplicate_key_inside_batch_changeset"]["body"]
    assert not d365_retryable(_resp(500, write_error))
    assert not d365_retryable(_resp(400, write_error))
    assert d365_retryable(_resp(500, {"error": {"code": "", "message": "An error has occurred."}}))
    assert d365_retryable(_resp(502, b"<html>Bad gateway</html>"))
    assert d365_retryable(_resp(429))
    assert not d365_retryable(_resp(404))


def test_a_post_is_not_resent_after_an_ambiguous_failure() -> None:
    def answer(method: str, status: int) -> httpx.Response:
        return httpx.Response(
            status, content=b"<html>gateway</html>", request=httpx.Request(method, "https://x/data/$batch")
        )

    assert not d365_retryable(answer("POST", 502)) and not d365_retryable(answer("POST", 504))
    assert d365_retryable(answer("POST", 503)) and d365_retryable(answer("POST", 429))
    assert d365_retryable(answer("GET", 502)) and d365_retryable(answer("PATCH", 504))
    post, get = httpx.Request("POST", "https://x/data/X"), httpx.Request("GET", "https://x/data/X")
    assert not resend_after_no_answer(post, httpx.ReadTimeout("slow"))
    assert resend_after_no_answer(post, httpx.ConnectError("refused"))
    assert resend_after_no_answer(get, httpx.ReadTimeout("slow"))


def test_infolog_lines_of_write_returned_recid_zero() -> None:
    assert infolog_lines("Write returned RecId 0. Infolog: Error: Mandatory field 'Organization name' not set.") == [
        "Mandatory field 'Organization name' not set."
    ]


# --- dimensions -------------------------------------------------------------------------------

ORDER = ["BusinessUnit", "CostCenter", "Department"]


def test_dimensions_full_partial_and_empty() -> None:
    assert format_dimensions({"BusinessUnit": "001", "CostCenter": "007", "Department": "022"}, ORDER) == "001-007-022"
    assert format_dimensions({"BusinessUnit": "001", "Department": "022"}, ORDER) == "001--022"
    assert format_dimensions({"BusinessUnit": "001"}, ORDER) == "001--"
    assert format_dimensions({"CostCenter": "007"}, ORDER, delimiter="|") == "|007|"
    assert format_dimensions({}, ORDER) == ""


def test_dimensions_reject_delimiter_inside_value_and_unknown_names() -> None:
    with pytest.raises(ValidationError, match="CostCenter value 'A-1' contains the delimiter"):
        format_dimensions({"CostCenter": "A-1"}, ORDER)
    with pytest.raises(ValidationError, match="unknown dimension"):
        format_dimensions({"Region": "EU"}, ORDER)
    with pytest.raises(ValidationError, match="delimiter"):
        format_dimensions({"CostCenter": "1"}, ORDER, delimiter="/")


# --- business events --------------------------------------------------------------------------


def test_parse_real_business_event_samples() -> None:
    samples = _sample("business-and-data-event-payload-samples.json")
    event = parse_business_event(json.dumps(samples["business_event_custom_customer_changed"]["payload"]))
    assert event.business_event_id == "FFYCustomerChangedBusinessEvent"
    assert event.control_number == 5637985363
    assert event.event_id == "9C091AF1-5BAF-4CA9-B0A4-94D6E59A0D1C"
    assert event.event_time == datetime(2023, 10, 16, 15, 42, 46, tzinfo=UTC)
    assert event.fields["Account"] == "6043"
    assert not event.is_test
    test_event = parse_business_event(samples["business_event_test_message"]["payload_mock"])
    assert test_event.is_test


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'"a string"',
        json.dumps({"hello": "world"}).encode(),
        json.dumps({"BusinessEventId": "X", "EventId": "E"}).encode(),  # no ControlNumber
        json.dumps({"BusinessEventId": "X", "ControlNumber": "12", "EventId": "E"}).encode(),  # wrong type
        json.dumps({"BusinessEventId": "X", "ControlNumber": 1, "EventId": "E", "EventTime": "yesterday"}).encode(),
    ],
)
def test_non_business_event_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(InvalidEventError):
        parse_business_events(body)


def test_data_event_is_not_a_business_event() -> None:
    data_event = _sample("business-and-data-event-payload-samples.json")[
        "data_event_real_capture_customer_group_create"
    ]
    with pytest.raises(InvalidEventError, match="not a D365 business event"):
        parse_business_events(json.dumps(data_event["payload"]))


# --- $batch codec -----------------------------------------------------------------------------


def _batch_answer(*parts: str, truncate: bool = False) -> tuple[str, bytes]:
    inner = "\r\n".join(
        f"--changesetresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {i}\r\n\r\n{p}"
        for i, p in enumerate(parts, 1)
    )
    body = (
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
        f"{inner}\r\n--changesetresponse_1--\r\n--batchresponse_1--\r\n"
    )
    if truncate:
        body = body[: len(body) // 2]
    return "multipart/mixed; boundary=batchresponse_1", body.encode()


def test_build_changeset_and_parse_answer() -> None:
    ctype, body = build_changeset(
        "https://env.example/data",
        [
            Operation(method="POST", path="SalesOrderHeadersV2", body={"dataAreaId": "dat"}),
            Operation(method="POST", path="$1/SalesOrderLines", body={"ItemNumber": " X"}),
        ],
    )
    text = body.decode()
    assert ctype.startswith("multipart/mixed; boundary=batch_")
    assert "POST https://env.example/data/SalesOrderHeadersV2 HTTP/1.1" in text
    assert "POST $1/SalesOrderLines HTTP/1.1" in text and "Content-ID: 2" in text
    assert '{"ItemNumber":" X"}' in text

    ok = 'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n{"SalesOrderNumber":"SO-1"}'
    parts = parse_batch_response(*_batch_answer(ok, ok.replace("SO-1", "SO-1b")))
    assert [p.status for p in parts] == [201, 201]
    assert parts[1].json() == {"SalesOrderNumber": "SO-1b"} and parts[0].content_id == "1"


def test_truncated_or_foreign_batch_answers_are_protocol_errors() -> None:
    ok = 'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n{"a":1}'
    with pytest.raises(ProtocolError, match="truncated"):
        parse_batch_response(*_batch_answer(ok, truncate=True))
    with pytest.raises(ProtocolError, match="not multipart"):
        parse_batch_response("text/html", b"<html>gateway</html>")
    with pytest.raises(ProtocolError, match="status line"):
        parse_batch_response(*_batch_answer("garbage\r\n\r\n{}"))
