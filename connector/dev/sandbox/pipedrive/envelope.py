"""Pipedrive's response envelopes and error bodies, in one place (pipedrive-api.md section 5)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."


class ApiError(Exception):
    """Raised by handlers; the app turns it into the documented error body with this status."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("error") or body.get("message") or str(status))
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


def error_body(message: str, *, code: str | None = None, info: str = ERROR_INFO) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "error": message,
        "error_info": info,
        "data": None,
        "additional_data": None,
    }
    if code is not None:
        body["code"] = code
    return body


def bad_request(message: str) -> ApiError:
    """v2 schema-validation failure (shape from client-nodejs#651; status 400 UNCONFIRMED there)."""
    return ApiError(400, error_body(f"Validation failed: {message}", code="ERR_SCHEMA_VALIDATION_FAILED"))


def not_found(entity: str) -> ApiError:
    # Message wording for v2 is UNCONFIRMED (third-party mocks use "Deal not found").
    return ApiError(404, error_body(f"{entity} not found", info="Object was not found."))


def unauthorized(message: str = "unauthorized access") -> ApiError:
    """The 401 body of SPEC-v1 (`/users/me`, `/webhooks`), plus the error_info seen live (third party)."""
    return ApiError(
        401,
        {"success": False, "error": message, "errorCode": 401, "error_info": "Please check developers.pipedrive.com"},
    )


def forbidden(message: str) -> ApiError:
    return ApiError(403, error_body(message))


def gone(message: str = "Old resource permanently unavailable") -> ApiError:
    return ApiError(410, error_body(message))


def ok(data: Any, additional_data: Any = None, *, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional_data is not None:
        body["additional_data"] = additional_data
    return web.json_response(body, status=status)


def ok_list(items: list[Any], next_cursor: str | None, *, status: int = 200) -> web.Response:
    return web.json_response(
        {"success": True, "data": items, "additional_data": {"next_cursor": next_cursor}}, status=status
    )
