"""The error bodies F&O answers with (shapes from reference samples/odata-error-body-samples.json)."""

from __future__ import annotations

from typing import Any

WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
ODATA_EXCEPTION = "Microsoft.OData.ODataException"
STACK = (
    "   at Microsoft.Dynamics.Platform.Integration.Services.OData.Update.UpdateProcessor.CreateEntity_Save("
    "ChangeOperationContext context, ChangeInfo changeInfo)\r\n"
    "   at Microsoft.Dynamics.Platform.Integration.Services.OData.Update.ChangeInfo.TrySave("
    "ChangeOperationContext operationContext)"
)


class ODataError(Exception):
    """An error the simulator answers with `status` and an OData error envelope."""

    def __init__(self, status: int, message: str, *, inner: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.inner = inner
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": "", "message": self.message}
        if self.inner is not None:
            error["innererror"] = self.inner
        return {"error": error}


class WriteError(ODataError):
    """A business-logic failure: generic outer message, Infolog text in innererror (AxODataWriteException)."""

    def __init__(self, aot_entity: str, infolog: list[str], *, status: int = 400, prefix: str | None = None) -> None:
        head = prefix or f"Write failed for table row of type '{aot_entity}'."
        text = f"{head} Infolog: " + "; ".join(infolog)
        super().__init__(
            status, "An error has occurred.", inner={"message": text, "type": WRITE_EXCEPTION, "stacktrace": STACK}
        )
        self.infolog = infolog


class WebApiError(ODataError):
    """An answer of ASP.NET Web API itself, before OData runs: `{"Message": ...}`, not the OData envelope."""

    def body(self) -> dict[str, Any]:
        return {"Message": self.message}


def bad_request(message: str) -> ODataError:
    """Query/payload errors raised by the OData library layer, before X++ logic runs."""
    return ODataError(400, message, inner={"message": message, "type": ODATA_EXCEPTION, "stacktrace": ""})


def not_found(entity_set: str, key: str) -> ODataError:
    # F&O's exact 404 text is UNCONFIRMED; this is the ODataLib wording for a missing key segment.
    return ODataError(404, f"No resource was found for the segment '{entity_set}({key})'.")


def throttled(message: str, retry_after: int) -> ODataError:
    error = ODataError(429, message)
    error.headers["Retry-After"] = str(retry_after)
    return error
