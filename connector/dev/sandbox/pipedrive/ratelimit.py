"""Pipedrive's two limits (pipedrive-api.md section 3 and Appendix A).

- Burst: per token, rolling 2-second window; size by plan and auth type; Search API 10 / 2 s.
- Daily: a per-company token budget (30,000 x plan multiplier x seats), each request costing its
  operation's documented `x-token-cost`; resets at midnight server time (zone UNCONFIRMED: UTC here).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .envelope import ApiError, error_body

# plan -> (daily multiplier, api-token burst, oauth burst)
PLANS: dict[str, tuple[int, int, int]] = {
    "lite": (1, 20, 80),
    "growth": (2, 40, 160),
    "premium": (5, 100, 400),
    "ultimate": (7, 120, 480),
}

# (method, route) -> x-token-cost, for the operations the simulator serves (Appendix A.1 / A.2).
TOKEN_COST: dict[tuple[str, str], int] = {
    ("GET", "/api/v2/deals"): 10, ("POST", "/api/v2/deals"): 5, ("GET", "/api/v2/deals/{id}"): 1,
    ("PATCH", "/api/v2/deals/{id}"): 5, ("DELETE", "/api/v2/deals/{id}"): 3,
    ("GET", "/api/v2/deals/{id}/products"): 10, ("POST", "/api/v2/deals/{id}/products"): 5,
    ("GET", "/api/v2/deals/products"): 10, ("GET", "/api/v2/deals/archived"): 20,
    ("GET", "/api/v2/organizations"): 10, ("POST", "/api/v2/organizations"): 5,
    ("GET", "/api/v2/organizations/{id}"): 1, ("PATCH", "/api/v2/organizations/{id}"): 5,
    ("GET", "/api/v2/organizations/search"): 20,
    ("GET", "/api/v2/persons"): 10, ("POST", "/api/v2/persons"): 5, ("GET", "/api/v2/persons/{id}"): 1,
    ("PATCH", "/api/v2/persons/{id}"): 5, ("DELETE", "/api/v2/persons/{id}"): 3,
    ("DELETE", "/api/v2/organizations/{id}"): 3, ("DELETE", "/api/v2/products/{id}"): 3,
    ("GET", "/api/v2/products"): 10, ("POST", "/api/v2/products"): 5, ("GET", "/api/v2/products/{id}"): 1,
    ("PATCH", "/api/v2/products/{id}"): 5, ("GET", "/api/v2/products/search"): 20,
    ("GET", "/api/v2/dealFields"): 10, ("GET", "/api/v2/dealFields/{field_code}"): 1,
    ("GET", "/api/v2/organizationFields"): 10, ("GET", "/api/v2/organizationFields/{field_code}"): 1,
    ("GET", "/api/v2/personFields"): 10, ("GET", "/api/v2/personFields/{field_code}"): 1,
    ("GET", "/api/v2/productFields"): 10, ("GET", "/api/v2/productFields/{field_code}"): 1,
    ("GET", "/api/v2/pipelines"): 5, ("GET", "/api/v2/stages"): 5,
    ("GET", "/v1/dealFields"): 20, ("GET", "/v1/dealFields/{id}"): 2,
    ("GET", "/v1/organizationFields"): 20, ("GET", "/v1/organizationFields/{id}"): 2,
    ("GET", "/v1/personFields"): 20, ("GET", "/v1/personFields/{id}"): 2,
    ("GET", "/v1/productFields"): 20, ("GET", "/v1/productFields/{id}"): 2,
    ("GET", "/v1/webhooks"): 10, ("POST", "/v1/webhooks"): 10, ("DELETE", "/v1/webhooks/{id}"): 6,
    ("GET", "/v1/users/me"): 2, ("GET", "/v1/currencies"): 20,
}  # fmt: skip


def token_cost(method: str, route: str) -> int:
    """Documented cost; `/api/v1/...` is the same operation as `/v1/...`; unknown ops cost a v1 default."""
    route = route.replace("/api/v1/", "/v1/", 1)
    return TOKEN_COST.get((method, route), 10 if route.startswith("/api/v2/") else 20)


class RateLimits(BaseModel):
    """Limits of one sandbox company; tests pass tight values (e.g. burst_api_token=3, daily_tokens=50)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: Literal["lite", "growth", "premium", "ultimate"] = "growth"
    seats: int = Field(5, ge=1)
    burst_api_token: int | None = Field(None, ge=1, description="Override the plan's API-token burst.")
    burst_oauth: int | None = Field(None, ge=1, description="Override the plan's OAuth burst.")
    burst_search: int = Field(10, ge=1)
    window_seconds: float = Field(2.0, gt=0)
    daily_tokens: int | None = Field(None, ge=0, description="Override 30,000 x multiplier x seats.")
    # Retry-After on 429 is UNCONFIRMED for today's API (documented only in 2015): off by default (the strict
    # reading: clients must pace by the documented x-ratelimit-* headers), switchable on.
    send_retry_after: bool = False

    def burst(self, kind: str, search: bool) -> int:
        if search:
            return self.burst_search
        _, api, oauth = PLANS[self.plan]
        return (self.burst_oauth or oauth) if kind == "oauth" else (self.burst_api_token or api)

    def daily(self) -> int:
        return self.daily_tokens if self.daily_tokens is not None else 30_000 * PLANS[self.plan][0] * self.seats


class RateLimiter:
    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.wall = wall
        self.reset()

    def reset(self) -> None:
        self._windows: dict[tuple[str, bool], deque[float]] = {}
        self.used_today = 0
        self._day = self.wall().date()

    def check(self, token: str, kind: str, cost: int, *, search: bool = False) -> dict[str, str]:
        """Count one request; returns the rate headers, or raises the 429 carrying them."""
        now = self.clock()
        if self.wall().date() != self._day:
            self.used_today, self._day = 0, self.wall().date()
        limit = self.limits.burst(kind, search)
        window = self._windows.setdefault((token, search), deque())
        while window and window[0] <= now - self.limits.window_seconds:
            window.popleft()
        daily = self.limits.daily()
        if self.used_today + cost > daily:
            headers = self._headers(limit, window, now, daily)
            wait = self.seconds_to_midnight()
            if self.limits.send_retry_after:
                headers["Retry-After"] = str(wait)
            raise ApiError(429, error_body("Request over limit"), headers)
        if len(window) >= limit:
            headers = self._headers(limit, window, now, daily)
            if self.limits.send_retry_after:
                headers["Retry-After"] = headers["x-ratelimit-reset"]
            raise ApiError(429, error_body("Request over limit"), headers)
        window.append(now)
        self.used_today += cost
        return self._headers(limit, window, now, daily)

    def _headers(self, limit: int, window: deque[float], now: float, daily: int) -> dict[str, str]:
        reset = window[0] + self.limits.window_seconds - now if window else self.limits.window_seconds
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - len(window))),
            "x-ratelimit-reset": self._reset_value(reset),
            # Observed live, undocumented (UNCONFIRMED): the daily token budget.
            "x-daily-ratelimit-token-limit": str(daily),
            "x-daily-ratelimit-token-remaining": str(max(0, daily - self.used_today)),
        }

    def _reset_value(self, reset: float) -> str:
        # Whole seconds as documented; a test's sub-2 s window gets fractions so tests stay fast.
        if self.limits.window_seconds >= 2.0:
            return str(max(1, math.ceil(reset)))
        return f"{max(reset, 0.001):.3f}"

    def seconds_to_midnight(self) -> int:
        now = self.wall()
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        return max(1, math.ceil((midnight - now).total_seconds()))
