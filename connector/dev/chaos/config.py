"""What one chaos run does: how many deals and workers, which numbering, how hard, for how long."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Numbering = Literal["from_deal", "d365_sequence"]


class ChaosConfig(BaseModel):
    """One run. The schedule of kills and faults is drawn from `seed`, so a failing run can be repeated."""

    model_config = ConfigDict(extra="forbid")

    deals: int = Field(60, ge=1, le=20_000)
    workers: int = Field(2, ge=1, le=16, description="`ml-connector serve` processes sharing the queues.")
    numbering: Numbering = "from_deal"
    seed: int = 7
    kills: int = Field(3, ge=0, description="kill -9 of a random worker, each restarted shortly after.")
    fault_events: int = Field(24, ge=0, description="Fault bursts injected during the run (both APIs).")
    chaos_seconds: float = Field(
        25.0, gt=0, description="How long deals are won and faults injected; the drain follows."
    )
    drain_seconds: float = Field(240.0, gt=0, description="Bound on the wait for queues to drain afterwards.")
    restart_after: tuple[float, float] = (0.3, 2.0)
    poll_every: float = Field(4.0, gt=0, description="Each worker's poll timer (the net under dropped webhooks).")
    d365_timeout: float = Field(2.0, gt=0, description="The connector's D365 HTTP timeout (when configurable).")
    stale_seconds: int = Field(
        60, ge=60, description="JOB_STALE_SECONDS: a queued/running job untouched this long may be sent again."
    )
    new_customer_share: float = Field(0.5, ge=0, le=1, description="Deals whose organization D365 lacks.")
    person_only_share: float = Field(0.1, ge=0, le=1, description="Deals with a person and no organization.")
    second_company_share: float = Field(0.2, ge=0, le=1, description="Deals in the DACH pipeline (demf).")
    log_level: str = "INFO"

    @classmethod
    def short(cls, numbering: Numbering, **changes: object) -> ChaosConfig:
        """The `make test` run: a few dozen deals, a few kills, well under two minutes."""
        base: dict[str, object] = {
            "deals": 40, "workers": 2, "kills": 3, "fault_events": 18, "chaos_seconds": 18.0, "drain_seconds": 240.0,
        }  # fmt: skip
        return cls.model_validate({**base, "numbering": numbering, **changes})

    @classmethod
    def full(cls, numbering: Numbering, **changes: object) -> ChaosConfig:
        """The `make chaos` run: 1,000 deals, three workers, a kill every few seconds."""
        base: dict[str, object] = {
            "deals": 1000, "workers": 3, "kills": 12, "fault_events": 160, "chaos_seconds": 150.0,
            "drain_seconds": 900.0, "poll_every": 10.0, "stale_seconds": 300,
        }  # fmt: skip
        return cls.model_validate({**base, "numbering": numbering, **changes})
