"""Doctor checks on our own side: the mapping file, Storage tables and queues, secrets (names only), the
business-event endpoint."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from connector.doctor.report import Check, fail, ok, warn
from connector.errors import ConnectorError
from connector.queues import poison_name
from connector.secrets import SecretNames
from connector.state.jobs import PROBE_JOB

if TYPE_CHECKING:
    from connector.mapping.config import MappingConfig
    from connector.runtime import Runtime

EVENTS_PATH = "/api/d365/events"


def mapping_check(rt: Runtime) -> tuple[Check, MappingConfig | None]:
    try:
        cfg = rt.mapping
    except ConnectorError as exc:
        first = str(exc).splitlines()[0]
        return fail("mapping", "mapping.file", f"{rt.settings.mapping_file}: {first}",
                    "correct the mapping file (every problem is listed by `ml-connector doctor --json`)."), None  # fmt: skip
    return ok("mapping", "mapping.file", f"{rt.settings.mapping_file} is valid"), cfg


def required_secrets(rt: Runtime) -> list[str]:
    s = rt.settings
    names = [SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD]
    if s.pipedrive_auth_mode == "oauth":
        names += [
            SecretNames.PIPEDRIVE_OAUTH_CLIENT_ID,
            SecretNames.PIPEDRIVE_OAUTH_CLIENT_SECRET,
            SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN,
        ]
    else:
        names.append(SecretNames.PIPEDRIVE_API_TOKEN)
    if s.pipedrive_webhook_signature_header:
        names.append(SecretNames.PIPEDRIVE_WEBHOOK_SIGNING_SECRET)
    if s.d365_credential == "client_secret":
        names.append(SecretNames.D365_CLIENT_SECRET)
    return names


async def secret_checks(rt: Runtime) -> list[Check]:
    """Each secret the settings need can be read; the value is read and dropped, never shown."""
    where = rt.secrets.description
    how = (
        "az keyvault secret set --vault-name <vault> --name {name} --value …"
        if rt.settings.key_vault_url
        else "ml-connector secrets set {name}"
    )
    checks: list[Check] = []
    for name in required_secrets(rt):
        try:
            value = await rt.secrets.get(name)
        except ConnectorError:
            checks.append(
                fail(
                    "secrets",
                    f"secret {name}",
                    f"{name} is missing from {where}",
                    f"store it: `{how.format(name=name)}`.",
                )
            )
            continue
        if value.strip():
            checks.append(ok("secrets", f"secret {name}", f"{name} is present in {where}"))
        else:
            checks.append(
                fail(
                    "secrets",
                    f"secret {name}",
                    f"{name} is empty in {where}",
                    f"store the real value: `{how.format(name=name)}`.",
                )
            )
    return checks


async def storage_checks(rt: Runtime) -> list[Check]:
    checks: list[Check] = []
    fix = "grant the app's identity Storage Table Data Contributor and Storage Queue Data Contributor (infra/modules/rbac.bicep)."
    probes = {
        rt.state.names.jobs: lambda: rt.state.jobs.get(PROBE_JOB, "probe"),
        rt.state.names.audit: lambda: rt.state.audit.trail("doctor-probe"),
        rt.state.names.idmap: lambda: rt.state.idmap.get("doctor", "probe"),
        rt.state.names.checkpoints: lambda: rt.state.checkpoints.get("doctor-probe"),
    }
    for table, probe in probes.items():
        try:
            await probe()
        except ConnectorError as exc:
            checks.append(fail("storage", f"table {table}", f"table {table} is not usable: {exc}", fix))
        else:
            checks.append(ok("storage", f"table {table}", f"table {table} answers"))
    for queue in (rt.queues.order_queue, rt.queues.master_queue):
        for name in (queue, poison_name(queue)):
            try:
                depth = await rt.queues.depth(name)
            except ConnectorError as exc:
                checks.append(fail("storage", f"queue {name}", f"queue {name} is not usable: {exc}", fix))
            else:
                checks.append(ok("storage", f"queue {name}", f"queue {name} answers ({depth} message(s))"))
    return checks


async def events_endpoint_check(app_url: str | None, function_key: str | None) -> Check:
    """POST D365's own activation test event to this app's events route, as D365 does when it is set up."""
    row = "app.d365_events"
    if not app_url:
        return warn("app", row, "the app's URL is unknown, so the business-event endpoint was not called",
                    "pass --app-url (and --function-key) to check the endpoint D365 posts to.")  # fmt: skip
    url = app_url.rstrip("/") + EVENTS_PATH
    now = datetime.now(UTC)
    event = {
        "BusinessEventId": "BusinessEventsTestEndpointContract",
        "BusinessEventLegalEntity": "",
        "ControlNumber": 0,
        "EventId": str(uuid.uuid4()).upper(),
        "EventTime": f"/Date({int(now.timestamp() * 1000)})/",
        "EventTimeIso8601": now.isoformat(),
        "MajorVersion": 0,
        "MinorVersion": 0,
    }
    headers = {"x-functions-key": function_key} if function_key else {}
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                url, content=json.dumps(event), headers={"Content-Type": "application/json", **headers}
            )
    except httpx.HTTPError as exc:
        return fail(
            "app",
            row,
            f"{url} did not answer ({type(exc).__name__})",
            "check that the function app is running and reachable.",
        )
    if response.status_code == 401:
        return fail("app", row, f"{url} refused the function key (401)",
                    "pass the app's function key (az functionapp keys list) with --function-key.")  # fmt: skip
    if response.status_code != 200:
        return fail("app", row, f"{url} answered {response.status_code} to D365's test event",
                    "look at the app's logs for the events function; D365 gives up on an endpoint that fails.")  # fmt: skip
    return ok("app", row, f"{url} acknowledged D365's test event")
