"""The doctor's report: one row per assumption, pass / warn / fail, with the fix in one sentence."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["pass", "warn", "fail"]


class Check(BaseModel):
    """One checked assumption. `name` is stable (scripts and tests select rows by it)."""

    model_config = ConfigDict(frozen=True)

    area: str  # pipedrive, d365, mapping, storage, secrets, app
    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(area: str, name: str, detail: str) -> Check:
    return Check(area=area, name=name, status="pass", detail=detail)


def warn(area: str, name: str, detail: str, fix: str) -> Check:
    return Check(area=area, name=name, status="warn", detail=detail, fix=fix)


def fail(area: str, name: str, detail: str, fix: str) -> Check:
    return Check(area=area, name=name, status="fail", detail=detail, fix=fix)


class DoctorReport(BaseModel):
    checks: list[Check]

    @property
    def counts(self) -> dict[Status, int]:
        counts: dict[Status, int] = {"pass": 0, "warn": 0, "fail": 0}
        for check in self.checks:
            counts[check.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        return self.counts["fail"] == 0

    def find(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "counts": self.counts, "checks": [c.model_dump() for c in self.checks]}
