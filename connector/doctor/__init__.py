"""`ml-connector doctor` / `GET /api/admin/doctor`: check every assumption the deployment and the mapping
make, against the real systems, before go-live and whenever something looks wrong. Reads only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector import telemetry
from connector.doctor.report import Check, DoctorReport, fail

if TYPE_CHECKING:
    from connector.runtime import Runtime

__all__ = ["Check", "DoctorReport", "run_doctor"]


async def run_doctor(rt: Runtime, *, app_url: str | None = None, function_key: str | None = None) -> DoctorReport:
    """Every check, in a fixed order; a check that crashes becomes a failed row, never a crash."""
    from connector.doctor.d365 import d365_checks
    from connector.doctor.pipedrive import pipedrive_checks
    from connector.doctor.platform import events_endpoint_check, mapping_check, secret_checks, storage_checks

    mapping, cfg = mapping_check(rt)
    checks: list[Check] = [mapping]
    async with telemetry.operation("doctor") as op:
        for area, step in (
            ("secrets", lambda: secret_checks(rt)),
            ("storage", lambda: storage_checks(rt)),
            ("pipedrive", lambda: pipedrive_checks(rt, cfg, app_url)),
            ("d365", lambda: d365_checks(rt, cfg)),
        ):
            try:
                checks += await step()
            except Exception as exc:  # a check's own bug or an unexpected answer: report it as a row
                checks.append(fail(area, f"{area}.unexpected", f"{type(exc).__name__}: {str(exc)[:300]}",
                                   "run the doctor again; if it repeats, the logs have the details."))  # fmt: skip
        checks.append(await events_endpoint_check(app_url, function_key))
        report = DoctorReport(checks=checks)
        op.outcome = "ok" if report.ok else "fail"
        op.set(**{f"checks_{k}": v for k, v in report.counts.items()})
    return report
