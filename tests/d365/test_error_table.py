"""The D365 error table, one case per rule: a typed innererror is permanent at any status, with its message.

Bodies are the real shapes from the reference (samples/odata-error-body-samples.json and the
ODataArgumentException F&O answers to an ambiguous update, quoted in public write-ups).
"""

from __future__ import annotations

import json

import httpx
import pytest

from connector.d365.errors import classify, error_from_response
from connector.errors import (
    AuthError,
    ConnectorError,
    DuplicateError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientError,
    ValidationError,
)
from connector.retry import resend_after_failure

ARGUMENT = {
    "error": {
        "code": "",
        "message": "An error has occurred.",
        "innererror": {
            "message": "More than one resource was found when selecting for update.",
            "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.ODataArgumentException",
            "stacktrace": "",
        },
    }
}
WRITE = {
    "error": {
        "code": "",
        "message": "An error has occurred.",
        "innererror": {
            "message": "Write failed for table row of type 'SalesOrderLineV3Entity'. Infolog: Warning: Inventory "
            "dimension Site is mandatory and must consequently be specified.; Error: Update has been canceled..",
            "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException",
            "stacktrace": "   at ...",
        },
    }
}
UNTYPED = {"error": {"code": "", "message": "An error has occurred."}}
DUPLICATE = {
    "error": {
        "code": "",
        "message": "An error has occurred.",
        "innererror": {
            "message": "Write failed for table row of type 'CustCustomerGroupEntity'. Infolog: Info: Cannot create a "
            "record in Customer groups (CustGroup). Customer group: Batch2, Batch 2 Test group T1.\nThe record "
            "already exists..",
            "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException",
        },
    }
}
ROUTE_404 = {
    "Message": "No HTTP resource was found that matches the request URI "
    "'https://x/data/ReleasedProductsV2(dataAreaId='usmf',ItemNumber='105E11/74N')'. No route data was found."
}


def _resp(
    status: int, body: object = b"", method: str = "GET", headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers=headers or {}, request=httpx.Request(method, "https://x/data/X")
    )


CASES = [
    # (id, status, body, method, expected class, transient?, text in message)
    ("argument exception at 400", 400, ARGUMENT, "PATCH", ValidationError, False, "More than one resource"),
    ("argument exception at 500", 500, ARGUMENT, "GET", ValidationError, False, "More than one resource"),
    ("write exception at 503", 503, WRITE, "GET", ValidationError, False, "Inventory dimension Site is mandatory"),
    ("write exception at 500", 500, WRITE, "POST", ValidationError, False, "Update has been canceled"),
    ("duplicate at 500", 500, DUPLICATE, "POST", DuplicateError, False, "The record already exists."),
    ("untyped 500 on a read", 500, UNTYPED, "GET", TransientError, True, "D365 unavailable (500)"),
    ("untyped 500 on a create", 500, UNTYPED, "POST", TransientError, False, "D365 unavailable (500)"),
    ("bare 503 on a create", 503, b"", "POST", TransientError, True, "D365 unavailable (503)"),
    ("gateway page", 502, b"<html><title>502 Bad Gateway</title></html>", "GET", TransientError, True, "Bad Gateway"),
    (
        "429",
        429,
        {"error": {"code": "", "message": "Number of concurrent requests exceeded the limit of 52."}},
        "POST",
        RateLimitedError,
        True,
        "throttled",
    ),
    ("route 404", 404, ROUTE_404, "GET", NotFoundError, False, "not found"),
    ("401", 401, b"", "GET", AuthError, False, "credentials"),
    (
        "untyped 400",
        400,
        {"error": {"code": "", "message": "The query specified in the URI is not valid."}},
        "GET",
        ValidationError,
        False,
        "not valid",
    ),
    ("412", 412, UNTYPED, "PATCH", PermanentError, False, "conflict"),
]


@pytest.mark.parametrize(
    ("status", "body", "method", "cls", "transient", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_table_row(
    status: int, body: object, method: str, cls: type[ConnectorError], transient: bool, text: str
) -> None:
    response = _resp(status, body, method)
    error = error_from_response(response, f"{method} X")
    assert type(error) is cls
    assert text in str(error)
    assert "stacktrace" not in str(error) and "   at " not in str(error)
    failure = classify(response)
    assert failure is not None and resend_after_failure(response.request, failure) is transient


def test_typed_innererror_message_is_the_reason() -> None:
    error = error_from_response(_resp(503, WRITE), "POST SalesOrderLines")
    assert isinstance(error, ValidationError) and not error.retryable
    assert error.lines == [
        "Inventory dimension Site is mandatory and must consequently be specified.",
        "Update has been canceled.",
    ]
