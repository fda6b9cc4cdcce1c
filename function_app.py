"""Azure Functions entry point (Python v2 model): thin bindings that adapt and delegate.

Cold start matters (Flex has a 30 s host-initialisation limit): only azure.functions and the stdlib
logging setup are imported here; each handler imports its connector module when it first runs.
"""

from __future__ import annotations

import json

import azure.functions as func

from connector.logging_setup import configure_logging

configure_logging()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def json_response(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Storage reachability and versions: 200 when tables and queues answer, else 503."""
    from connector.functions.health import health_report

    report = await health_report()
    return json_response(report.model_dump(), report.http_status)
