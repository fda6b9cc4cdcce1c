"""Hypothesis profiles: `ci` (make test: bounded, a fixed seed so a run is repeatable) and `fuzz` (make fuzz:
many more examples, a fresh seed each run; failures are kept in .hypothesis/ to replay)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # storage round trips vary; speed is the benchmarks' business
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("fuzz", max_examples=1500, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
